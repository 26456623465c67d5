"""What the pool costs: running time from observed EC2 states, priced per server.

Modules: ``pricing`` (running spans, a PR's and a repository's cost, money and hours as text),
``chart`` (the dashboard's monthly cost chart per repository).

May import: the shared top level and the EC2 port's value types. Never ``web``, ``cli`` or
``sandbox``.
"""
