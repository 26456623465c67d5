"""The pool's money-saving policies: they decide in the database only, between plan and observe.

Modules: ``sleep`` (an environment's instance stops, its server and schema stay), ``savings``
(idle sleep, expiry, reclaiming sleepers' servers), ``office_hours`` (schedules as time math),
``repository_hours`` (a repository's environments follow its office hours), ``server_hours``
(servers outside the pool started and stopped), ``facts`` (what the policies mean for one PR now).

May import: the shared top level, ``cost``, ``reconcile``'s pass context, the EC2 port's value
types. Never ``web``, ``cli`` or ``sandbox``.
"""
