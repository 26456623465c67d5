"""The per-PR MySQL account: created locked, granted on one schema, opened by a new password.

A clone needs the account before the environment's credentials are handed out: views, triggers
and routines are owned by it (see :mod:`pullre.staging_db.definitions`), and MySQL checks a view's
definer when the view is created. So a clone makes the account locked, with a password nobody
knows, and :func:`set_password` later unlocks it with the one the instance receives.
"""

from __future__ import annotations

import secrets

import pymysql
import pymysql.cursors

from pullre.staging_db.connection import error_code
from pullre.staging_db.names import USER_HOST, account, quote_grant_schema

#: 32 random bytes: far beyond guessing, and URL-safe so it needs no quoting in an ini or a DSN.
PASSWORD_BYTES = 32
ER_UNKNOWN_THREAD = 1094


def new_password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)


def user_exists(cursor: pymysql.cursors.Cursor, user: str) -> bool:
    cursor.execute("SELECT 1 FROM mysql.user WHERE User = %s AND Host = %s", (user, USER_HOST))
    return cursor.fetchone() is not None


def ensure_user(cursor: pymysql.cursors.Cursor, user: str, schema: str) -> None:
    """The account exists with ALL on ``schema`` and nothing else; a new one cannot log in yet."""
    cursor.execute(
        f"CREATE USER IF NOT EXISTS {_with_args(account(user))} IDENTIFIED BY %s ACCOUNT LOCK",
        (new_password(),),
    )
    # Whatever else the account was ever given goes, so "this schema only" holds even for a
    # user that existed before pullre managed it.
    cursor.execute(f"REVOKE ALL PRIVILEGES, GRANT OPTION FROM {account(user)}")
    # Escaped: an unescaped ``_`` in the grant is a wildcard that would let the user create
    # look-alike schemas (``prX1X2`` for ``pr_1_2``).
    cursor.execute(f"GRANT ALL PRIVILEGES ON {quote_grant_schema(schema)}.* TO {account(user)}")


def set_password(
    cursor: pymysql.cursors.Cursor, user: str, password: str, *, max_connections: int
) -> None:
    """Open the account with ``password``; ``max_connections`` caps its concurrent sessions, so
    one PR's app cannot take every connection of the shared server."""
    cursor.execute(
        f"ALTER USER {_with_args(account(user))} IDENTIFIED BY %s"
        f" WITH MAX_USER_CONNECTIONS {int(max_connections)} ACCOUNT UNLOCK",
        (password,),
    )


def drop_user(cursor: pymysql.cursors.Cursor, user: str) -> None:
    cursor.execute(f"DROP USER IF EXISTS {account(user)}")


def kill_sessions(cursor: pymysql.cursors.Cursor, user: str) -> None:
    """End the PR app's connections, whose open transactions would make DROP wait on locks."""
    cursor.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = %s", (user,))
    for (thread_id,) in cursor.fetchall():
        try:
            cursor.execute("KILL CONNECTION %s", (int(thread_id),))
        except pymysql.err.MySQLError as exc:
            if error_code(exc) != ER_UNKNOWN_THREAD:  # it ended on its own meanwhile
                raise


def _with_args(sql: str) -> str:
    """PyMySQL %-formats a statement that has arguments; the host ``%`` must survive that."""
    return sql.replace("%", "%%")
