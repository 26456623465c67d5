"""Read models of the pool for pages and monitoring: fixed query counts whatever its size.

Modules: ``dashboard`` (the dashboard's rows and pool summary), ``pool_usage`` (pool use over the
last days, from ``pass_runs``), ``metrics`` (the Prometheus text of ``/metrics``).

May import: the shared top level, ``cost``, ``reconcile.pool``, ``environments``. Never ``web``,
``cli`` or ``sandbox``.
"""
