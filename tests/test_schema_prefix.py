"""``[staging_mysql] schema_prefix`` through a real pass: PR schemas and users are named with it
on a real MariaDB, and a release drops them; a schema under another prefix is never dropped."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest
from sqlalchemy import make_url, select

from pullre.models import Environment, Event
from pullre.staging_db.database import PyMysqlStagingDatabase
from pullre.staging_db.names import quote_identifier
from tests.reconcile_fixtures import NAME, OWNER, World


def admin(url_text: str) -> pymysql.Connection[Any]:
    url = make_url(url_text)
    return pymysql.connect(
        host=url.host,
        port=url.port or 3306,
        user=url.username,
        password=url.password or "",
        autocommit=True,
    )


def schemas_like(url: str, pattern: str) -> list[str]:
    conn = admin(url)
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE %s",
                (pattern,),
            )
            return sorted(str(name) for (name,) in cursor.fetchall())
    finally:
        conn.close()


@pytest.fixture
def base(mysql_server_url: str) -> Iterator[str]:
    name = f"prefix_base_{secrets.token_hex(4)}"
    conn = admin(mysql_server_url)
    with conn.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {quote_identifier(name)}")
        cursor.execute(f"CREATE TABLE {quote_identifier(name)}.t (id INT PRIMARY KEY)")
    yield name
    with conn.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {quote_identifier(name)}")
    conn.close()


def test_a_pass_names_pr_schemas_with_the_prefix_and_drops_only_its_own(
    world: World, mysql_server_url: str, base: str
) -> None:
    prefix = f"t{secrets.token_hex(4)}"
    staging = PyMysqlStagingDatabase.from_url(mysql_server_url, prefix=prefix)
    other = PyMysqlStagingDatabase.from_url(mysql_server_url, prefix=f"{prefix}_x")
    repository_id = world.add_repository(base_schema=base)
    world.add_servers(2)
    first = world.standin.open_pull(OWNER, NAME)
    second = world.standin.open_pull(OWNER, NAME)
    try:
        world.run(staging=staging)
        assert world.newest(first).schema_name == f"{prefix}_{repository_id}_{first}"
        assert schemas_like(mysql_server_url, f"{prefix}\\_%") == sorted(
            [f"{prefix}_{repository_id}_{first}", f"{prefix}_{repository_id}_{second}"]
        )
        # Another controller's schema in the way: the same server, a longer prefix.
        stranger = f"{prefix}_x_{repository_id}_{first}"
        other.clone(base, stranger)
        with world.sessions() as session:
            environment = session.get(Environment, world.newest(second).id)
            assert environment is not None
            environment.schema_name = stranger  # as if this controller had been misled
            session.commit()

        world.standin.close(OWNER, NAME, first)
        world.standin.close(OWNER, NAME, second)
        world.run(staging=staging)
        world.run(staging=staging)

        # The first PR's schema is gone; the stranger stays (and the second PR's own schema,
        # which its environment no longer names, is left for the cleanup below).
        left = schemas_like(mysql_server_url, f"{prefix}\\_%")
        assert left == sorted([stranger, f"{prefix}_{repository_id}_{second}"])
        with world.sessions() as session:
            errors = session.scalars(select(Event.message).where(Event.kind == "error")).all()
        assert any(f"dropping {stranger} failed" in e and "schema_prefix" in e for e in errors)
    finally:
        for leftover in staging.leftovers() + other.leftovers():
            (staging if leftover.name.startswith(f"{prefix}_{repository_id}") else other).drop(
                leftover.name
            )
