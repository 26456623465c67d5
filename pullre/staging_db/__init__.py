"""The staging MySQL where per-PR schemas live, behind the :class:`StagingDatabase` port.

Modules: ``port`` (the protocol and its value types), ``database`` (the PyMySQL implementation and
``make_staging_database``), ``connection`` (connections and typed errors), ``clone``
(server-side schema clone), ``definitions`` (views, triggers, routines, events), ``users`` (the
per-PR account), ``names`` (schema and user names, the one way they reach SQL).

May import: ``config``, ``identifiers`` and PyMySQL. Never ``web``, ``cli`` or ``sandbox``.
"""
