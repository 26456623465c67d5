"""The sandbox's staging MySQL: found, or started, or explained; plus its base schema.

A newcomer may have a server running, only the binaries, or nothing; the sandbox uses the first
it finds and otherwise runs without per-PR schemas, saying what to install, rather than refusing
to show the rest of the loop.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import pymysql
from sqlalchemy import URL, make_url

from pullre.sandbox.mariadb import MysqlUnavailable, ThrowawayServer
from pullre.staging_db.database import PyMysqlStagingDatabase

ENV_VAR = "PULLRE_SANDBOX_MYSQL_URL"
LOCAL_URL = "mysql+pymysql://root@127.0.0.1:3306"
INSTALL_HINT = (
    "No MySQL for per-PR schemas: install MariaDB (Debian/Ubuntu: `apt-get install "
    "mariadb-server mariadb-client`) so the sandbox can start a throwaway server itself, or set "
    f"{ENV_VAR}=mysql+pymysql://USER:PASSWORD@HOST:PORT to an account that may create "
    "databases and users. Everything else runs; the migration PR's deploy fails for want of a "
    "database."
)

log = logging.getLogger("pullre.sandbox.staging")


@dataclass
class Staging:
    """An admin URL on a server the sandbox may create and drop schemas on."""

    url: str
    origin: str
    throwaway: ThrowawayServer | None = None

    def database(self) -> PyMysqlStagingDatabase:
        return PyMysqlStagingDatabase.from_url(self.url)

    def stop(self) -> None:
        if self.throwaway is not None:
            self.throwaway.stop()


def find(environ: Mapping[str, str]) -> Staging | None:
    """The configured server, else a local one, else a throwaway one; None with neither."""
    configured = environ.get(ENV_VAR, "").strip()
    if configured:
        url = _server_url(configured)
        problem = _problem(url)
        if problem:
            raise SystemExit(f"{ENV_VAR} is set but that server cannot be used: {problem}")
        return Staging(url.render_as_string(hide_password=False), ENV_VAR)
    if not _problem(make_url(LOCAL_URL)):
        return Staging(LOCAL_URL, "the local server on 127.0.0.1:3306")
    try:
        server = ThrowawayServer.start()
    except MysqlUnavailable as exc:
        log.warning("no throwaway MySQL: %s", exc)
        return None
    address = server.url.render_as_string(hide_password=False)
    return Staging(address, f"a throwaway server on port {server.port}", throwaway=server)


def create_base_schema(staging: Staging) -> str:
    """The repository's base schema, with the row every PR's app shows unless it migrates it."""
    name = f"sandbox_base_{secrets.token_hex(4)}"
    with _admin(staging.url) as cursor:
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        cursor.execute(
            f"CREATE TABLE `{name}`.greeting (id INT PRIMARY KEY AUTO_INCREMENT, "
            "message VARCHAR(100) NOT NULL)"
        )
        insert = f"INSERT INTO `{name}`.greeting (message) VALUES (%s)"  # noqa: S608 - our name
        cursor.execute(insert, ("hello from base",))
    return name


def drop_schemas(staging: Staging, base_schema: str | None, pr_prefix: str) -> list[str]:
    """Drop the base schema and every PR schema (and user) with ``pr_prefix``; their names."""
    database = staging.database()
    dropped = []
    for leftover in database.leftovers(pr_prefix):
        if leftover.kind == "schema":
            database.drop(leftover.name)  # its user too
            dropped.append(leftover.name)
    for leftover in database.leftovers(pr_prefix):  # a user whose schema was already gone
        if leftover.kind == "user":
            database.drop(leftover.name)
    if base_schema:
        with _admin(staging.url) as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{base_schema}`")
        dropped.append(base_schema)
    return dropped


@contextlib.contextmanager
def _admin(url_text: str) -> Iterator[pymysql.cursors.Cursor]:
    url = make_url(url_text)
    connection = pymysql.connect(
        host=url.host,
        port=url.port or 3306,
        user=url.username,
        password=url.password or "",
        autocommit=True,
    )
    with connection, connection.cursor() as cursor:
        yield cursor


def _server_url(value: str) -> URL:
    url = make_url(value)
    return url.set(drivername=f"{url.get_backend_name()}+pymysql", database=None)


def _problem(url: URL) -> str:
    try:
        pymysql.connect(
            host=url.host,
            port=url.port or 3306,
            user=url.username,
            password=url.password or "",
            connect_timeout=2,
        ).close()
    except pymysql.MySQLError as exc:
        return str(exc)
    return ""
