"""What a repository secret may be called: an environment variable name pullre does not set.

The agent sets pullre's own variables after the secrets, so a shadowing name would silently do
nothing; refusing it when it is set says so where the admin can read it.
"""

from __future__ import annotations

import re

#: Environment variable names as POSIX shells accept them, at most 100 characters.
SECRET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
#: Names the agent or the box sets for every command (``pullre.agent.environment``,
#: ``pullre.agent.app_user``).
RESERVED = frozenset(
    {"PORT", "DATABASE_URL", "HOME", "PATH", "TMPDIR", "USER", "LOGNAME", "SHELL", "LANG"}
)
#: Prefixes of names pullre or the locale owns.
RESERVED_PREFIXES = ("PULLRE_", "MYSQL_", "LC_")


class SecretError(Exception):
    """A secret that cannot be set or removed as asked; the message says why, in one line."""


def check_name(name: str) -> str:
    """``name`` when it may name a secret, else SecretError saying what is allowed."""
    if not SECRET_NAME.fullmatch(name):
        raise SecretError(
            f"{name[:100]!r} is not an environment variable name (a letter or _ first, then "
            "letters, digits and _, at most 100)"
        )
    upper = name.upper()
    if upper in RESERVED or upper.startswith(RESERVED_PREFIXES):
        raise SecretError(
            f"{name} is set by pullre itself (PORT, DATABASE_URL, MYSQL_*, PULLRE_*, HOME, PATH"
            ", TMPDIR, USER, LOGNAME, SHELL, LANG, LC_*); choose another name"
        )
    return name
