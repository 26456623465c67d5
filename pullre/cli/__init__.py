"""``python -m pullre``: the admin CLI, one module per command group.

Modules: ``main`` (the parser, ``main(argv) -> exit status``, repositories, servers, users and
status), ``server_settings`` (a server's price and office hours, machines outside the pool).

May import anything but ``web``; the CLI is an entry point and builds its own adapters.
"""
