"""The staging MySQL port (:mod:`pullre.staging_db.port`) implemented with PyMySQL.

Entry points build it with :func:`make_staging_database`; domain code only sees the port.

Usage::

    staging = make_staging_database(settings.staging_mysql)   # schema_prefix "pr"
    schema = schema_name(1296269, 42, staging.schema_prefix)    # "pr_1296269_42"
    staging.clone("shop_base", schema)                          # or reset() to start over
    credentials = staging.create_user(schema)                   # hand these to the agent
    ...
    staging.drop(schema)                                        # schema and user, idempotent
    assert not [x for x in staging.leftovers() if x.name == schema]
"""

from __future__ import annotations

import contextlib
import re

import pymysql.cursors

from pullre.config import StagingMysqlSettings
from pullre.staging_db.clone import PARALLELISM, clone_schema, drop_schema
from pullre.staging_db.connection import ServerAddress, connect, translated_errors
from pullre.staging_db.names import (
    DEFAULT_PREFIX,
    InvalidName,
    checked_prefix,
    checked_schema,
    checked_schema_prefix,
    is_owned,
    quote_identifier,
    user_name,
)
from pullre.staging_db.port import (
    CloneResult,
    Credentials,
    Leftover,
    StagingDatabaseError,
)
from pullre.staging_db.users import (
    drop_user,
    ensure_user,
    kill_sessions,
    new_password,
    set_password,
)

#: A caller-chosen password shorter than this is a bug, not a choice.
MIN_PASSWORD_LENGTH = 16
#: ``[staging_mysql] max_user_connections``' default, for callers without settings.
MAX_USER_CONNECTIONS = 20


class PyMysqlStagingDatabase:
    """:class:`StagingDatabase` over PyMySQL, one short-lived admin connection per call.

    No pooled connection is kept: calls are minutes apart in a reconcile pass, and a fresh
    connection never carries a previous call's session settings or a dead socket.
    """

    def __init__(
        self,
        address: ServerAddress,
        *,
        prefix: str = DEFAULT_PREFIX,
        parallelism: int = PARALLELISM,
        max_user_connections: int = MAX_USER_CONNECTIONS,
    ) -> None:
        self.address = address
        self.prefix = checked_schema_prefix(prefix)
        self.parallelism = parallelism
        self.max_user_connections = max_user_connections

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        parallelism: int = PARALLELISM,
        max_user_connections: int = MAX_USER_CONNECTIONS,
    ) -> PyMysqlStagingDatabase:
        return cls(
            ServerAddress.from_url(url),
            prefix=prefix,
            parallelism=parallelism,
            max_user_connections=max_user_connections,
        )

    def __repr__(self) -> str:
        return f"PyMysqlStagingDatabase({self.address!r}, prefix={self.prefix!r})"

    @property
    def schema_prefix(self) -> str:
        return self.prefix

    def _ours(self, schema: str, doing: str) -> str:
        """``schema`` when this controller named it; another's (or an admin's) is refused."""
        if not is_owned(checked_schema(schema), self.prefix):
            raise InvalidName(
                f"not {doing} {schema}: only schemas named {self.prefix}_<repo id>_<number> "
                "belong to this controller ([staging_mysql] schema_prefix)"
            )
        return schema

    def clone(self, source: str, target: str) -> CloneResult:
        self._ours(target, "cloning over")
        return clone_schema(
            self.address,
            source,
            target,
            owner=user_name(target),
            parallelism=self.parallelism,
        )

    def reset(self, source: str, target: str) -> CloneResult:
        # clone() drops the old target itself (ending the app's sessions first, whose open
        # transactions would hold the drop up), but only once the source is known to exist: a
        # reset from a vanished source keeps the PR's data instead of leaving nothing. The user
        # stays; the caller gives it a new password with create_user.
        return self.clone(source, target)

    def create_user(self, schema: str, *, password: str | None = None) -> Credentials:
        checked_schema(schema)
        user = user_name(schema)
        if password is None:
            password = new_password()
        elif len(password) < MIN_PASSWORD_LENGTH:
            raise StagingDatabaseError(
                f"a PR user's password needs at least {MIN_PASSWORD_LENGTH} characters"
            )
        with (
            contextlib.closing(connect(self.address)) as conn,
            translated_errors(self.address, password),
            conn.cursor() as cursor,
        ):
            ensure_user(cursor, user, schema)
            set_password(cursor, user, password, max_connections=self.max_user_connections)
            # A new password locks out new logins only; sessions opened with the old one end too.
            kill_sessions(cursor, user)
        return Credentials(
            user=user,
            password=password,
            host=self.address.host,
            port=self.address.port,
            database=schema,
        )

    def drop(self, schema: str) -> None:
        user = user_name(self._ours(schema, "dropping"))
        with (
            contextlib.closing(connect(self.address)) as conn,
            translated_errors(self.address),
            conn.cursor() as cursor,
        ):
            # User first, so the app cannot log in again between the kill and the drop.
            drop_user(cursor, user)
            kill_sessions(cursor, user)
            drop_schema(cursor, schema)
            for name in _look_alikes(cursor, schema, self.prefix):
                cursor.execute(f"DROP DATABASE IF EXISTS {quote_identifier(name)}")

    def exists(self, schema: str) -> bool:
        checked_schema(schema)
        with (
            contextlib.closing(connect(self.address)) as conn,
            translated_errors(self.address),
            conn.cursor() as cursor,
        ):
            cursor.execute(
                "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (schema,)
            )
            return cursor.fetchone() is not None

    def leftovers(self, prefix: str | None = None) -> list[Leftover]:
        prefix = f"{self.prefix}_" if prefix is None else checked_prefix(prefix)
        if not prefix.startswith(f"{self.prefix}_"):
            raise InvalidName(f"{prefix!r} does not begin with this controller's {self.prefix}_")
        pattern = prefix.replace("_", r"\_") + "%"
        with (
            contextlib.closing(connect(self.address)) as conn,
            translated_errors(self.address),
            conn.cursor() as cursor,
        ):
            cursor.execute(
                "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE %s",
                (pattern,),
            )
            schemas = [Leftover("schema", str(name)) for (name,) in cursor.fetchall()]
            cursor.execute(
                "SELECT User FROM mysql.user WHERE User LIKE %s AND Host = %s",
                (pattern, "%"),
            )
            users = [Leftover("user", str(name)) for (name,) in cursor.fetchall()]
            cursor.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")
            wildcard = re.compile(re.escape(prefix).replace("_", "."), re.DOTALL)
            look_alike = _look_alike(self.prefix)
            look_alikes = [
                Leftover("look-alike", str(name))
                for (name,) in cursor.fetchall()
                if look_alike.fullmatch(str(name))
                and not is_owned(str(name), self.prefix)
                and wildcard.match(str(name))
            ]
        owned = [x for x in schemas + users if is_owned(x.name, self.prefix)]
        return sorted(owned + look_alikes)


def _look_alike(prefix: str) -> re.Pattern[str]:
    """Names a PR user could create under an old, unescaped grant on ``<prefix>_<r>_<n>``:
    every ``_`` (the prefix's own too) was a wildcard there."""
    return re.compile(re.escape(prefix).replace("_", ".") + r".[0-9]+.[0-9]+", re.DOTALL)


def _look_alikes(cursor: pymysql.cursors.Cursor, schema: str, prefix: str) -> list[str]:
    """Schemas other than ``schema`` that ``schema`` matches as a LIKE pattern: what its user
    could create under an unescaped grant. Matched in Python, case and all, so no collation
    widens the match to a schema the user could not have made."""
    wildcard = re.compile(re.escape(schema).replace("_", "."), re.DOTALL)
    cursor.execute(
        "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA"
        " WHERE SCHEMA_NAME LIKE %s AND SCHEMA_NAME <> %s",
        (schema, schema),
    )
    return [
        str(name)
        for (name,) in cursor.fetchall()
        if wildcard.fullmatch(str(name)) and not is_owned(str(name), prefix)
    ]


def make_staging_database(settings: StagingMysqlSettings) -> PyMysqlStagingDatabase:
    if not settings.url:
        raise StagingDatabaseError("[staging_mysql] url is not set")
    return PyMysqlStagingDatabase.from_url(
        settings.url,
        prefix=settings.schema_prefix,
        max_user_connections=settings.max_user_connections,
    )


def configured_staging_database(settings: StagingMysqlSettings) -> PyMysqlStagingDatabase | None:
    """The real adapter when ``[staging_mysql] url`` is set; None runs pullre without schemas."""
    return make_staging_database(settings) if settings.url else None
