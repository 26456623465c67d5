"""A real MariaDB/MySQL server for tests (a pytest plugin, listed in ``conftest.pytest_plugins``).

Fixtures
--------
``mysql_server_url`` (session scope)
    A SQLAlchemy URL string ``mysql+pymysql://user[:password]@host:port`` naming no database,
    for an account with admin rights (CREATE/DROP DATABASE, CREATE USER, GRANT). Use it for
    the staging side (cloning schemas, per-PR users) or to build your own database URLs.
    Where it comes from, first match wins:

    1. ``PULLRE_TEST_MYSQL_URL`` when set (any database in it is dropped from the URL), e.g.
       ``PULLRE_TEST_MYSQL_URL=mysql+pymysql://root@127.0.0.1:3306``;
    2. a throwaway server this test session starts itself from the installed binaries
       (``mariadb-install-db`` + ``mariadbd``, or MySQL's ``mysqld --initialize-insecure``,
       looked up on PATH and in /usr/sbin): temp datadir, own unix socket, a free TCP port on
       127.0.0.1, root without a password; stopped and its datadir removed at session end;
    3. otherwise every test that needs it FAILS (never skips) saying what to install.

``mysql_database_url`` (function scope)
    A fresh, empty database ``pullre_test_<hex>`` (utf8mb4) on that server, yielded as
    ``mysql+pymysql://.../pullre_test_<hex>?charset=utf8mb4`` and dropped after the test.

Tests that use either fixture are marked ``mysql`` automatically (so ``-m "not mysql"``
deselects them); mark them ``@pytest.mark.mysql`` anyway, for the reader.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import URL, create_engine, make_url, text
from sqlalchemy.pool import NullPool

from pullre.sandbox.mariadb import MysqlUnavailable, ThrowawayServer

ENV_VAR = "PULLRE_TEST_MYSQL_URL"
MYSQL_FIXTURES = frozenset({"mysql_server_url", "mysql_database_url"})
INSTALL_HINT = (
    "These tests need a MariaDB/MySQL server. Either install the server binaries so the test "
    "session can start a throwaway server itself (Debian/Ubuntu: `apt-get install "
    "mariadb-server`), or point the tests at a server with admin rights: "
    f"`export {ENV_VAR}=mysql+pymysql://root@127.0.0.1:3306`."
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if MYSQL_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.mysql)


@pytest.fixture(scope="session")
def mysql_server_url() -> Iterator[str]:
    configured = os.environ.get(ENV_VAR, "").strip()
    if configured:
        url = _server_url_from_env(configured)
        _check_reachable(url)
        yield url.render_as_string(hide_password=False)
        return
    try:
        server = ThrowawayServer.start()
    except MysqlUnavailable as exc:
        problem = str(exc)
    else:
        problem = ""
    if problem:  # failed outside the except block, so the report shows no chained traceback
        pytest.fail(f"{problem}\n{INSTALL_HINT}", pytrace=False)
    try:
        yield server.url.render_as_string(hide_password=False)
    finally:
        server.stop()


@pytest.fixture
def mysql_database_url(mysql_server_url: str) -> Iterator[str]:
    name = f"pullre_test_{secrets.token_hex(6)}"
    server = make_url(mysql_server_url)
    engine = create_engine(server, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    try:
        url = server.set(database=name).update_query_dict({"charset": "utf8mb4"})
        yield url.render_as_string(hide_password=False)
    finally:
        with engine.connect() as connection:
            # A connection the test leaked would make DROP wait on its metadata lock forever.
            connection.execute(text("SET SESSION lock_wait_timeout = 30"))
            connection.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        engine.dispose()


def _server_url_from_env(value: str) -> URL:
    try:
        url = make_url(value)
    except Exception as exc:
        problem = f"{ENV_VAR}={value!r} is not a SQLAlchemy URL: {exc}"
    else:
        problem = ""
    if problem:
        pytest.fail(problem, pytrace=False)
    if url.get_backend_name() not in {"mysql", "mariadb"}:
        pytest.fail(
            f"{ENV_VAR} must be a mysql+pymysql:// URL, got {url!r}\n{INSTALL_HINT}", pytrace=False
        )
    return url.set(drivername=f"{url.get_backend_name()}+pymysql", database=None)


def _check_reachable(url: URL) -> None:
    engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 10})
    problem = ""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        problem = str(getattr(exc, "orig", None) or exc)
    finally:
        engine.dispose()
    if problem:
        pytest.fail(
            f"{ENV_VAR} is set to {url!r} but that server cannot be used: {problem}\n"
            f"{INSTALL_HINT}",
            pytrace=False,
        )
