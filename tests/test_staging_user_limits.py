"""The PR user's limits on a real MariaDB/MySQL: one schema exactly, a connection cap, and the
look-alike schemas an old wildcard grant let it create found and dropped.

Names are unique per test (``pr_<random>_<n>``), so runs beside other tests do not collide.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from pullre.staging_db.database import Leftover, PyMysqlStagingDatabase
from pullre.staging_db.names import quote_identifier
from tests.test_mysql_clone import admin_connect, new_target, rows, run, user_connect

ER_DBACCESS_DENIED = 1044
ER_TOO_MANY_USER_CONNECTIONS = 1203
ER_USER_LIMIT_REACHED = 1226


@pytest.fixture
def admin(mysql_server_url: str) -> Iterator[pymysql.Connection[Any]]:
    conn = admin_connect(mysql_server_url)
    yield conn
    conn.close()


@pytest.fixture
def target(mysql_server_url: str, admin: pymysql.Connection[Any]) -> Iterator[str]:
    """A fresh PR schema with one table, dropped (with its user) after the test."""
    name = new_target()
    run(admin, f"CREATE DATABASE {quote_identifier(name)}")
    run(admin, f"CREATE TABLE {quote_identifier(name)}.t (id INT PRIMARY KEY)")
    yield name
    PyMysqlStagingDatabase.from_url(mysql_server_url).drop(name)


def look_alike(schema: str) -> str:
    """``pr_1_2`` → ``prX1X2``: what an unescaped grant on ``pr_1_2`` also covered."""
    return schema.replace("_", "X")


def test_the_grant_covers_its_schema_only_not_look_alikes(
    mysql_server_url: str, admin: pymysql.Connection[Any], target: str
) -> None:
    staging = PyMysqlStagingDatabase.from_url(mysql_server_url)
    credentials = staging.create_user(target)
    conn = user_connect(credentials)
    try:
        run(conn, "INSERT INTO t VALUES (1)")  # its own schema works as before
        for name in (look_alike(target), target.replace("_", "x", 1)):
            with pytest.raises(pymysql.err.OperationalError) as denied:
                run(conn, f"CREATE DATABASE {quote_identifier(name)}")
            assert denied.value.args[0] == ER_DBACCESS_DENIED
    finally:
        conn.close()
    assert rows(
        admin,
        "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
        (look_alike(target),),
    ) == [(0,)]


def test_look_alikes_made_under_an_old_wildcard_grant_are_found_and_dropped(
    mysql_server_url: str, admin: pymysql.Connection[Any], target: str
) -> None:
    staging = PyMysqlStagingDatabase.from_url(mysql_server_url)
    credentials = staging.create_user(target)
    # As the user could before grants were escaped: the old wildcard grant, then its schema.
    user = f"'{target}'@'%'"
    run(admin, f"GRANT ALL PRIVILEGES ON {quote_identifier(target)}.* TO {user}")
    conn = user_connect(credentials)
    try:
        run(conn, f"CREATE DATABASE {quote_identifier(look_alike(target))}")
    finally:
        conn.close()
    unrelated = "pr" + target[3:].replace("_", "")  # no wildcard of this PR matches it
    run(admin, f"CREATE DATABASE {quote_identifier(unrelated)}")
    try:
        prefix = target[: target.rindex("_") + 1]
        assert Leftover("look-alike", look_alike(target)) in staging.leftovers(prefix)

        staging.drop(target)

        names = {name for (name,) in rows(admin, "SHOW DATABASES")}
        assert target not in names
        assert look_alike(target) not in names
        assert unrelated in names
        assert not [left for left in staging.leftovers(prefix) if target[3:] in left.name]
    finally:
        run(admin, f"DROP DATABASE IF EXISTS {quote_identifier(unrelated)}")
        run(admin, f"DROP DATABASE IF EXISTS {quote_identifier(look_alike(target))}")


def test_max_user_connections_caps_the_pr_user(mysql_server_url: str, target: str) -> None:
    staging = PyMysqlStagingDatabase.from_url(mysql_server_url, max_user_connections=2)
    credentials = staging.create_user(target)
    first, second = user_connect(credentials), user_connect(credentials)
    try:
        with pytest.raises(pymysql.err.OperationalError) as refused:
            user_connect(credentials).close()
        assert refused.value.args[0] in {ER_USER_LIMIT_REACHED, ER_TOO_MANY_USER_CONNECTIONS}
        assert "max_user_connections" in str(refused.value)
    finally:
        first.close()
        second.close()


def test_a_new_password_ends_the_sessions_opened_with_the_old_one(
    mysql_server_url: str, target: str
) -> None:
    staging = PyMysqlStagingDatabase.from_url(mysql_server_url)
    old = staging.create_user(target)
    session = user_connect(old)
    try:
        new = staging.create_user(target)
        with pytest.raises((pymysql.err.OperationalError, pymysql.err.InterfaceError)):
            run(session, "SELECT 1")
        with pytest.raises(pymysql.err.OperationalError):
            user_connect(old)
        user_connect(new).close()
    finally:
        session.close()
