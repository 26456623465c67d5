"""People who sign in: UI accounts with their passwords, and personal API tokens.

Modules: ``user_accounts`` (create, find and authenticate a person), ``api_tokens`` (a person's
tokens for ``/api/v1``: created once, stored hashed, revoked, scoped to the owner's role),
``login_throttle`` (failed logins counted per account and per address in the DB, and the
lockouts they earn).

May import: the shared top level (``models``, ``clock``, ``events``) and ``servers`` (for its token
hashing). Never ``web``, ``cli`` or ``sandbox``.
"""
