"""The pool as admins manage it: registered servers, their agent tokens and settings.

Modules: ``registry`` (register, remove, start and stop by hand, agent tokens), ``address``
(its staging URL and app port, editable while a PR holds it), ``settings``
(a server's price and office hours for machines outside the pool).

May import: the shared top level, ``policies.office_hours`` and the EC2 port. Never ``web``,
``cli`` or ``sandbox``.
"""
