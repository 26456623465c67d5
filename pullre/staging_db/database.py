"""The staging MySQL port (:mod:`pullre.staging_db.port`) implemented with PyMySQL.

Entry points build it with :func:`make_staging_database`; domain code only sees the port.

Usage::

    staging = make_staging_database(settings.staging_mysql)
    schema = schema_name(repository_id=1296269, number=42)      # "pr_1296269_42"
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
    checked_prefix,
    checked_schema,
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
#: A schema a PR user could create under an old, unescaped grant on ``pr_<repo>_<number>``:
#: ``_`` was a wildcard there, so any character may stand where the underscores are.
_LOOK_ALIKE = re.compile(r"^pr.[0-9]+.[0-9]+$", re.DOTALL)
_PR_SCHEMA = re.compile(r"^pr_[0-9]+_[0-9]+$")


class PyMysqlStagingDatabase:
    """:class:`StagingDatabase` over PyMySQL, one short-lived admin connection per call.

    No pooled connection is kept: calls are minutes apart in a reconcile pass, and a fresh
    connection never carries a previous call's session settings or a dead socket.
    """

    def __init__(
        self,
        address: ServerAddress,
        *,
        parallelism: int = PARALLELISM,
        max_user_connections: int = MAX_USER_CONNECTIONS,
    ) -> None:
        self.address = address
        self.parallelism = parallelism
        self.max_user_connections = max_user_connections

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        parallelism: int = PARALLELISM,
        max_user_connections: int = MAX_USER_CONNECTIONS,
    ) -> PyMysqlStagingDatabase:
        return cls(
            ServerAddress.from_url(url),
            parallelism=parallelism,
            max_user_connections=max_user_connections,
        )

    def __repr__(self) -> str:
        return f"PyMysqlStagingDatabase({self.address!r})"

    def clone(self, source: str, target: str) -> CloneResult:
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
        checked_schema(schema)
        user = user_name(schema)
        with (
            contextlib.closing(connect(self.address)) as conn,
            translated_errors(self.address),
            conn.cursor() as cursor,
        ):
            # User first, so the app cannot log in again between the kill and the drop.
            drop_user(cursor, user)
            kill_sessions(cursor, user)
            drop_schema(cursor, schema)
            for name in _look_alikes(cursor, schema):
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

    def leftovers(self, prefix: str = "pr_") -> list[Leftover]:
        pattern = checked_prefix(prefix).replace("_", r"\_") + "%"
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
            look_alikes = [
                Leftover("look-alike", str(name))
                for (name,) in cursor.fetchall()
                if _LOOK_ALIKE.fullmatch(str(name))
                and not _PR_SCHEMA.fullmatch(str(name))
                and wildcard.match(str(name))
            ]
        return sorted(schemas + users + look_alikes)


def _look_alikes(cursor: pymysql.cursors.Cursor, schema: str) -> list[str]:
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
        if wildcard.fullmatch(str(name)) and not _PR_SCHEMA.fullmatch(str(name))
    ]


def make_staging_database(settings: StagingMysqlSettings) -> PyMysqlStagingDatabase:
    if not settings.url:
        raise StagingDatabaseError("[staging_mysql] url is not set")
    return PyMysqlStagingDatabase.from_url(
        settings.url, max_user_connections=settings.max_user_connections
    )


def configured_staging_database(settings: StagingMysqlSettings) -> PyMysqlStagingDatabase | None:
    """The real adapter when ``[staging_mysql] url`` is set; None runs pullre without schemas."""
    return make_staging_database(settings) if settings.url else None
