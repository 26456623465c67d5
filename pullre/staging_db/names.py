"""Names of per-PR schemas and users on the staging MySQL, and the one way they reach SQL text.

Schema and user names cannot be bound as query parameters, so they are the one place where a value
is pasted into SQL. Every such name is first matched against a strict pattern (letters, digits,
underscore) and then backtick-quoted by :func:`quote_identifier`; nothing from GitHub or a form is
ever used as a name directly — PR schemas are generated from two integers.
"""

from __future__ import annotations

import hashlib
import re

from pullre.identifiers import SCHEMA_NAME, SCHEMA_PREFIX
from pullre.staging_db.port import StagingDatabaseError

#: MySQL 5.7+/MariaDB allow 80 characters in a user name, but MySQL 5.6 and Aurora MySQL 1 only
#: 32, and replication of a longer name to such a server fails; 32 works everywhere.
USER_NAME_MAX = 32
USER_NAME = re.compile(rf"^[A-Za-z0-9_]{{1,{USER_NAME_MAX}}}$")
#: A prefix for :meth:`leftovers`: the same alphabet, possibly empty.
NAME_PREFIX = re.compile(r"^[A-Za-z0-9_]{0,64}$")
#: ``[staging_mysql] schema_prefix`` when none is set.
DEFAULT_PREFIX = "pr"
#: The host part of every per-PR account: the staging instances connect from anywhere in the VPC.
USER_HOST = "%"


class InvalidName(StagingDatabaseError, ValueError):
    """A schema or user name that pullre refuses to put into SQL.

    A staging error too, so a bad admin-entered source name fails that one PR, not the pass.
    """


def schema_name(repository_id: int, number: int, prefix: str = DEFAULT_PREFIX) -> str:
    """The PR's schema, ``<prefix>_<repo id>_<number>``: a checked prefix and two integers, so
    it needs no escaping to be safe, and controllers with different prefixes never collide."""
    if repository_id <= 0 or number <= 0:
        raise InvalidName(
            f"repository id and PR number must be positive, got {repository_id}, {number}"
        )
    return f"{checked_schema_prefix(prefix)}_{repository_id}_{number}"


def checked_schema_prefix(prefix: str) -> str:
    if not isinstance(prefix, str) or not SCHEMA_PREFIX.fullmatch(prefix):
        raise InvalidName(
            f"{prefix!r} is not a schema prefix: a letter, then letters, digits or _, at most 16"
        )
    return prefix


def is_owned(name: str, prefix: str) -> bool:
    """Whether ``name`` is one :func:`schema_name` makes with ``prefix`` (or its user).

    Exactly ``<prefix>_<digits>_<digits>``, not merely "starts with": prefixes ``pr`` and
    ``pr_1`` own ``pr_1_2`` and ``pr_1_2_3`` respectively, never each other's names.
    """
    pattern = rf"{re.escape(checked_schema_prefix(prefix))}_[0-9]+_[0-9]+"
    return isinstance(name, str) and re.fullmatch(pattern, name) is not None


def checked_schema(name: str) -> str:
    """The name itself, once it is known to be a plain identifier (admins' names included)."""
    if not isinstance(name, str) or not SCHEMA_NAME.fullmatch(name):
        raise InvalidName(
            f"{name!r} is not a schema name pullre uses: letters, digits and _ only, at most 64"
        )
    return name


def checked_user(name: str) -> str:
    if not isinstance(name, str) or not USER_NAME.fullmatch(name):
        raise InvalidName(
            f"{name!r} is not a MySQL user name pullre uses: letters, digits and _ only, "
            f"at most {USER_NAME_MAX}"
        )
    return name


def user_name(schema: str) -> str:
    """The environment's MySQL user: the schema name itself while it fits in 32 characters.

    ``pr_<repo id>_<number>`` always fits (GitHub ids have at most ~10 digits); a longer
    admin-chosen name is cut and suffixed with a hash of the whole, so two never share a user.
    """
    checked_schema(schema)
    if len(schema) <= USER_NAME_MAX:
        return schema
    digest = hashlib.sha256(schema.encode()).hexdigest()[:8]
    return f"{schema[: USER_NAME_MAX - 9]}_{digest}"


def quote_identifier(name: str) -> str:
    """Backtick-quote a name for SQL text; the only function in pullre that does so.

    Schema names arrive here already checked; table, column and routine names read back from the
    server's own catalogue may hold any character, so backticks are doubled as MySQL requires.
    """
    if "\x00" in name:
        raise InvalidName("an identifier cannot contain NUL")
    return "`" + name.replace("`", "``") + "`"


def quote_schema(name: str) -> str:
    return quote_identifier(checked_schema(name))


def quote_grant_schema(name: str) -> str:
    """The schema as GRANT reads it: ``_`` and ``%`` are wildcards there, so they are escaped.

    ``GRANT ... ON `pr_1_2`.*`` would also cover ``prX1X2``, which the PR user could then create
    and fill outside anything pullre drops; ``pr\\_1\\_2`` names that one schema only.
    """
    escaped = checked_schema(name).replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")
    return quote_identifier(escaped)


def account(user: str) -> str:
    """``'user'@'%'`` for CREATE USER, GRANT and DEFINER; checked names need no escaping."""
    return f"'{checked_user(user)}'@'{USER_HOST}'"


def checked_prefix(prefix: str) -> str:
    if not NAME_PREFIX.fullmatch(prefix):
        raise InvalidName(f"{prefix!r} is not a name prefix: letters, digits and _ only")
    return prefix
