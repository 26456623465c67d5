"""A PR's MySQL password is new for every stay and after "reset data", on a real MariaDB.

The reconciler's own calls (``provisioning.provision``/``drop``, ``actions.reset_data``) and the
password the agent API hands out (``deploys.assignment``); the PR's schema name is built from a
random repository id, so it meets no other test's.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pymysql
import pytest
from sqlalchemy.orm import Session

from pullre.environments import actions, deploys
from pullre.models import Environment, EnvironmentStatus, PullRequest, Repository, Server
from pullre.reconcile import provisioning
from pullre.staging_db.database import PyMysqlStagingDatabase
from pullre.staging_db.names import quote_identifier
from tests.test_mysql_clone import admin_connect, run

SECRET = "a-secret-key-for-password-derivation"
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ER_ACCESS_DENIED = 1045


@pytest.fixture
def base(mysql_server_url: str) -> Iterator[str]:
    name = f"pullre_src_{secrets.token_hex(5)}"
    admin = admin_connect(mysql_server_url)
    run(admin, f"CREATE DATABASE {quote_identifier(name)}")
    run(admin, f"CREATE TABLE {quote_identifier(name)}.t (id INT PRIMARY KEY)")
    try:
        yield name
    finally:
        run(admin, f"DROP DATABASE IF EXISTS {quote_identifier(name)}")
        admin.close()


def login(database: dict[str, Any]) -> None:
    pymysql.connect(
        host=database["host"],
        port=database["port"],
        user=database["user"],
        password=database["password"],
        database=database["name"],
    ).close()


def refused(database: dict[str, Any]) -> bool:
    try:
        login(database)
    except pymysql.err.OperationalError as exc:
        return bool(exc.args[0] == ER_ACCESS_DENIED)
    return False


def test_each_stay_and_each_reset_gets_a_new_mysql_password(
    session: Session, mysql_server_url: str, base: str
) -> None:
    staging = PyMysqlStagingDatabase.from_url(mysql_server_url)
    repository = Repository(
        id=secrets.randbelow(10**8) + 9 * 10**8, owner="acme", name="shop", base_schema=base
    )
    pull = PullRequest(repository=repository, number=7, author_login="alice", head_sha="a" * 40)
    server = Server(instance_id="i-0123456789abcdef0", staging_url="https://s.example")
    session.add_all([repository, pull, server])
    session.flush()

    def new_stay() -> Environment:
        environment = Environment(
            pull_request=pull, server=server, status=EnvironmentStatus.PROVISIONING
        )
        session.add(environment)
        session.flush()
        return environment

    def provisioned(environment: Environment) -> dict[str, Any]:
        problem = provisioning.provision(
            session, staging, environment, secret_key=SECRET, clock=lambda: NOW
        )
        assert problem is None
        found = deploys.assignment(
            session,
            server,
            staging_mysql_url=mysql_server_url,
            secret_key=SECRET,
            github_api_url="http://github.invalid",
        )
        assert found is not None
        assert found["environment_id"] == environment.id
        database: dict[str, Any] = found["database"]
        login(database)
        return database

    first = new_stay()
    try:
        stay_one = provisioned(first)
        # Released: schema and user dropped, the server free for the next stay of this PR.
        assert provisioning.drop(session, staging, first) is None
        first.status, first.server_id = EnvironmentStatus.RELEASED, None
        session.flush()

        second = new_stay()
        stay_two = provisioned(second)
        assert stay_two["user"] == stay_one["user"]
        assert stay_two["password"] != stay_one["password"]
        assert refused(stay_one)

        actions.reset_data(session, pull, actor="ada", clock=lambda: NOW)
        assert (
            deploys.assignment(  # no credentials while the schema is cloned again
                session,
                server,
                staging_mysql_url=mysql_server_url,
                secret_key=SECRET,
                github_api_url="http://github.invalid",
            )
            is None
        )
        after_reset = provisioned(second)
        assert after_reset["password"] not in {stay_one["password"], stay_two["password"]}
        assert refused(stay_two)
        assert refused(stay_one)
    finally:
        staging.drop(stay_schema(repository))


def stay_schema(repository: Repository) -> str:
    return f"pr_{repository.id}_7"
