"""Connections to the staging MySQL server, and the typed errors its failures become.

The admin URL carries a password that must never reach a log line, a traceback or the event log:
the address keeps it out of ``repr``, and errors raised here carry the server's message only
(with any password that might be echoed in it blanked out), never the original exception chain.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import pymysql
import pymysql.cursors
from pymysql.connections import Connection
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from pullre.staging_db.port import StagingDatabaseError, StagingUnavailable

#: Client errors that mean the connection is gone (server restart, KILL, network).
CONNECTION_LOST = frozenset({2003, 2006, 2013, 2055})
#: Server errors that mean our own session was killed (MariaDB 1927, MySQL 1317/1053).
SESSION_KILLED = frozenset({1053, 1317, 1927})
DRIVERS = frozenset({"mysql", "mysql+pymysql", "mariadb", "mariadb+pymysql"})
#: Long enough for any metadata lock a healthy server holds, short enough to fail a stuck drop.
LOCK_WAIT_TIMEOUT_S = 60

Conn: TypeAlias = "Connection[pymysql.cursors.Cursor]"


@dataclass(frozen=True)
class ServerAddress:
    host: str
    port: int
    user: str
    password: str = field(repr=False)

    @classmethod
    def from_url(cls, url: str) -> ServerAddress:
        """``mysql[+pymysql]://user:password@host[:port][/ignored]``; the database part is unused.

        Parse errors name the problem but not the URL, since the URL holds the admin password.
        """
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise StagingDatabaseError("[staging_mysql] url is not a valid URL") from None
        if parsed.drivername not in DRIVERS:
            raise StagingDatabaseError(
                f"[staging_mysql] url must start with mysql:// or mysql+pymysql://, "
                f"not {parsed.drivername}://"
            )
        if not parsed.host or not parsed.username:
            raise StagingDatabaseError("[staging_mysql] url needs a user name and a host")
        return cls(
            host=parsed.host,
            port=parsed.port or 3306,
            user=parsed.username,
            password=str(parsed.password or ""),
        )


def connect(address: ServerAddress, *, database: str | None = None) -> Conn:
    """A fresh autocommit connection; every statement pullre sends stands on its own."""
    try:
        return pymysql.connect(
            host=address.host,
            port=address.port,
            user=address.user,
            password=address.password,
            database=database,
            charset="utf8mb4",
            autocommit=True,
            connect_timeout=10,
        )
    except pymysql.err.MySQLError as exc:
        raise StagingUnavailable(
            f"cannot connect to the staging MySQL at {address.host}:{address.port} "
            f"as {address.user}: {describe(exc)}"
        ) from None


@contextlib.contextmanager
def connection(address: ServerAddress) -> Iterator[Conn]:
    conn = connect(address)
    try:
        with translated_errors(address):
            yield conn
    finally:
        with contextlib.suppress(Exception):
            conn.close()


@contextlib.contextmanager
def translated_errors(address: ServerAddress, *secrets: str) -> Iterator[None]:
    """Turn PyMySQL's errors into ours, dropping the chain (its args may echo SQL with secrets)."""
    try:
        yield
    except pymysql.err.MySQLError as exc:
        message = describe(exc, *secrets)
        if is_connection_lost(exc):
            raise StagingUnavailable(
                f"lost the connection to the staging MySQL at {address.host}:{address.port}: "
                f"{message}"
            ) from None
        raise StagingDatabaseError(message) from None


def describe(exc: BaseException, *secrets: str) -> str:
    """``(code) message`` of a PyMySQL error, with every given secret blanked out."""
    args: tuple[Any, ...] = getattr(exc, "args", ())
    if len(args) >= 2 and isinstance(args[0], int):
        text = f"({args[0]}) {args[1]}"
    else:
        text = str(exc) or type(exc).__name__
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def error_code(exc: BaseException) -> int | None:
    args: tuple[Any, ...] = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def is_connection_lost(exc: BaseException) -> bool:
    if isinstance(exc, pymysql.err.InterfaceError):
        return True
    return error_code(exc) in CONNECTION_LOST
