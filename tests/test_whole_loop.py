"""The whole loop with every real part: GitHub stand-in, moto EC2, MariaDB, controller, agent.

A PR opened on the stand-in gets a moto server and a clone of its repository's base schema;
the agent (``client.py`` as a subprocess, as cron runs it) deploys the PR's commit, whose SQL
migration changes only the PR's own schema, and the app answers with that data. Closing the PR
stops the server, drops the schema and its user, and the agent stops the app.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest
from cheroot import wsgi
from sqlalchemy import make_url, select

from pullre.config import Settings
from pullre.models import Environment, EnvironmentStatus
from pullre.mysql import PyMysqlStagingDatabase
from pullre.reconcile import run_configured_pass
from pullre.servers import register_server
from pullre.web import create_app
from tests.agent_fixtures import OriginRepo, pullre_toml
from tests.reconcile_fixtures import NAME, OWNER, World
from tests.web_fixtures import make_settings

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def base_schema(mysql_server_url: str) -> Iterator[str]:
    """The repository's base schema on the staging server, with one greeting in it."""
    url = make_url(mysql_server_url)
    name = f"shop_base_{secrets.token_hex(4)}"
    connection = pymysql.connect(
        host=url.host, port=url.port or 3306, user=url.username, password=url.password or ""
    )
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        cursor.execute(
            f"CREATE TABLE `{name}`.greeting (id INT PRIMARY KEY AUTO_INCREMENT, "
            "message VARCHAR(100) NOT NULL)"
        )
        cursor.execute(f"INSERT INTO `{name}`.greeting (message) VALUES ('hello from base')")
    connection.commit()
    yield name
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
    connection.close()


def greeting(mysql_server_url: str, schema: str) -> str:
    url = make_url(mysql_server_url)
    with (
        contextlib.closing(
            pymysql.connect(
                host=url.host, port=url.port or 3306, user=url.username, password=url.password or ""
            )
        ) as connection,
        connection.cursor() as cursor,
    ):
        cursor.execute(f"SELECT message FROM `{schema}`.greeting ORDER BY id LIMIT 1")
        row = cursor.fetchone()
    assert row is not None
    return str(row[0])


@pytest.fixture
def controller(
    world: World, mysql_server_url: str, tmp_path: Path
) -> Iterator[tuple[str, Settings]]:
    """The controller's web app in cheroot over the world's database, staging MySQL set."""
    settings = make_settings(
        str(world.engine.url),
        tmp_path,
        PULLRE_STAGING_MYSQL_URL=mysql_server_url,
        PULLRE_GITHUB_API_URL=world.standin.url,
    )
    server = wsgi.Server(("127.0.0.1", 0), create_app(settings, session_factory=world.sessions))
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    host, port = server.bind_addr
    yield f"http://{host}:{port}", settings
    server.stop()
    thread.join(timeout=5)


def run_agent(config: Path) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PULLRE_")}
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "client.py"), "--config", str(config)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def get(port: int, path: str) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return str(response.read().decode())
    except (urllib.error.URLError, OSError):
        return None


def test_a_pr_gets_a_live_environment_on_its_own_schema_and_loses_it_on_close(
    world: World,
    git_origin: OriginRepo,
    base_schema: str,
    mysql_server_url: str,
    controller: tuple[str, Settings],
    tmp_path: Path,
) -> None:
    controller_url, settings = controller
    staging = PyMysqlStagingDatabase.from_url(mysql_server_url)

    # The PR adds a SQL migration; its commit lives only under refs/pull/N/head (a fork's).
    toml = pullre_toml(git_origin.port) + '[migrations]\nsql_dir = "db/migrations"\n'
    sha = git_origin.fork_commit(
        {
            ".pullre.toml": toml,
            "db/migrations/001_greet.sql": "UPDATE greeting SET message = 'hello from the PR';\n",
        }
    )
    world.add_repository(base_schema=base_schema, clone_url=str(git_origin.path))
    (instance_id,) = world.ec2.create_instances(1)
    with world.sessions() as session:
        _, token = register_server(session, instance_id, "https://stage-1.example", "stage-1")
        session.commit()
    number = world.standin.open_pull(OWNER, NAME, head_sha=sha, fork_owner="mallory")
    git_origin.open_pr(number, sha)
    agent_ini = tmp_path / "agent.ini"
    agent_ini.write_text(
        f"[agent]\ncontroller_url = {controller_url}\ntoken = {token}\n"
        f"workdir = {tmp_path / 'agent'}\n"
    )

    def reconcile() -> None:
        report = run_configured_pass(
            settings, world.engine, world.github, world.ec2.adapter, staging=staging
        )
        assert report.errors == []

    def environment() -> Environment:
        with world.sessions() as session:
            return session.scalars(select(Environment).order_by(Environment.id.desc())).one()

    schema = None
    try:
        reconcile()
        env = environment()
        assert env.status is EnvironmentStatus.PROVISIONING
        schema = env.schema_name
        assert schema is not None
        assert env.schema_ready_at is not None
        assert world.ec2.state_of(instance_id) == "running"

        result = run_agent(agent_ini)
        assert result.returncode == 0, result.stderr
        assert get(git_origin.port, "/") == f"ok {sha}"
        # The app reads its own schema, migrated by the PR; the base is untouched.
        assert get(git_origin.port, "/row") == "hello from the PR"
        assert greeting(mysql_server_url, base_schema) == "hello from base"
        env = environment()
        assert (env.status, env.deployed_sha) == (EnvironmentStatus.READY, sha)

        world.standin.close(OWNER, NAME, number)
        reconcile()  # stops the instance
        reconcile()  # sees it stopped: drops the schema and its user, frees the server
        env = environment()
        assert env.status is EnvironmentStatus.RELEASED
        assert env.server_id is None
        assert world.ec2.state_of(instance_id) == "stopped"
        assert not staging.exists(schema)
        assert [left for left in staging.leftovers() if left.name == schema] == []

        result = run_agent(agent_ini)
        assert result.returncode == 0, result.stderr
        assert get(git_origin.port, "/") is None  # no assignment: the app is stopped
    finally:
        run_agent(agent_ini)  # a pass with no assignment stops whatever still runs
        if schema is not None:
            staging.drop(schema)  # idempotent: nothing to drop after a passing run
