"""The whole loop with every real part: GitHub stand-in, moto EC2, MariaDB, controller, agent.

A PR opened on the stand-in gets a moto server and a clone of its repository's base schema;
the agent (``client.py`` as a subprocess, as cron runs it) deploys the PR's commit, whose SQL
migration changes only the PR's own schema, and the app answers with that data. Closing the PR
stops the server, drops the schema and its user, and the agent stops the app. An environment
left idle sleeps (its instance stopped, the agent's app with it) and wakes again with its data.

Passes and the controller's API read one clock the test moves, so hours of idleness and of
running cost no waiting.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pymysql
import pytest
from cheroot import wsgi
from sqlalchemy import make_url, select

from pullre.agent import state, supervisor
from pullre.config import Settings
from pullre.cost.pricing import Cost, environment_costs
from pullre.environments import actions
from pullre.environments.deploys import database_password
from pullre.models import Environment, EnvironmentStatus, RunningSpan, SleepReason, Trust
from pullre.reconcile.run import run_configured_pass
from pullre.secret_key import resolve_secret_key
from pullre.servers.registry import register_server
from pullre.staging_db.database import PyMysqlStagingDatabase
from pullre.staging_db.names import user_name
from pullre.web import create_app
from pullre.web.request_clock import CLOCK_KEY
from tests.agent_fixtures import ME, OriginRepo, pullre_toml
from tests.clock import MovingClock
from tests.reconcile_fixtures import NAME, OWNER, World
from tests.web_fixtures import make_settings

REPO_ROOT = Path(__file__).resolve().parent.parent
#: moto launches t3.micro instances; the controller prices them from ``[cost] instance_prices``.
PRICE = Decimal("0.0104")
#: How long a condition may take to come true on a loaded machine.
DEADLINE_S = 30.0


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


@dataclass
class Controller:
    url: str
    settings: Settings
    #: What the passes and the controller's API take for now.
    clock: MovingClock


@pytest.fixture
def controller(world: World, mysql_server_url: str, tmp_path: Path) -> Iterator[Controller]:
    """The controller's web app in cheroot over the world's database, staging MySQL set, idle
    sleep after the shipped default of 120 minutes and the pool priced."""
    settings = make_settings(
        str(world.engine.url),
        tmp_path,
        PULLRE_STAGING_MYSQL_URL=mysql_server_url,
        PULLRE_GITHUB_API_URL=world.standin.url,
        PULLRE_POOL_IDLE_STOP_MINUTES="120",
        PULLRE_COST_INSTANCE_PRICES=f"t3.micro={PRICE}",
    )
    clock = MovingClock(datetime.now(UTC).replace(microsecond=0))
    app = create_app(settings, session_factory=world.sessions)
    app.extensions[CLOCK_KEY] = clock  # the agent's reports are recorded at the passes' time
    server = wsgi.Server(("127.0.0.1", 0), app)
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    host, port = server.bind_addr
    yield Controller(f"http://{host}:{port}", settings, clock)
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


def wait_until(
    condition: Callable[[], bool], what: str, *, meanwhile: Callable[[], object] | None = None
) -> None:
    """Until ``condition`` holds, doing ``meanwhile`` (else a short pause) between looks."""
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"still not {what} after {DEADLINE_S} s"
        if meanwhile is None:
            time.sleep(0.05)
        else:
            meanwhile()


@dataclass
class Loop:
    """One PR of acme/shop, from a fork, with a SQL migration, and one moto server for it."""

    world: World
    controller: Controller
    staging: PyMysqlStagingDatabase
    origin: OriginRepo
    instance_id: str
    number: int
    sha: str
    agent_ini: Path
    agent_workdir: Path

    @property
    def clock(self) -> MovingClock:
        return self.controller.clock

    def reconcile(self) -> None:
        report = run_configured_pass(
            self.controller.settings,
            self.world.engine,
            self.world.github,
            self.world.ec2.adapter,
            staging=self.staging,
            clock=self.clock,
        )
        assert report.errors == []

    def reconcile_until(self, condition: Callable[[], bool], what: str) -> None:
        """Passes (at the same fake time) until ``condition``, as cron would run them."""
        self.reconcile()
        wait_until(condition, what, meanwhile=self.reconcile)

    def agent(self) -> None:
        """One pass of the real agent, as cron runs it on the box."""
        result = run_agent(self.agent_ini)
        assert result.returncode == 0, result.stderr

    def environment(self) -> Environment:
        with self.world.sessions() as session:
            return session.scalars(select(Environment).order_by(Environment.id.desc())).one()

    def app(self, path: str) -> str | None:
        return get(self.origin.port, path)

    def stop_app(self) -> None:
        """Stop whatever app the agent left running, whatever the controller asks of it."""
        app = state.load(self.agent_workdir).app
        if app is not None:
            supervisor.stop(app.pid, app.start_time, timeout=5)


@pytest.fixture
def loop(
    world: World,
    git_origin: OriginRepo,
    base_schema: str,
    controller: Controller,
    mysql_server_url: str,
    tmp_path: Path,
) -> Iterator[Loop]:
    # The PR adds a SQL migration; its commit lives only under refs/pull/N/head (a fork's).
    toml = pullre_toml(git_origin.port) + '[migrations]\nsql_dir = "db/migrations"\n'
    sha = git_origin.fork_commit(
        {
            ".pullre.toml": toml,
            "db/migrations/001_greet.sql": "UPDATE greeting SET message = 'hello from the PR';\n",
        }
    )
    world.add_repository(
        base_schema=base_schema, clone_url=str(git_origin.path), trust=Trust.EVERYONE
    )
    (instance_id,) = world.ec2.create_instances(1)
    with world.sessions() as session:
        _, token = register_server(session, instance_id, "https://stage-1.example", "stage-1")
        session.commit()
    number = world.standin.open_pull(OWNER, NAME, head_sha=sha, fork_owner="mallory")
    git_origin.open_pr(number, sha)
    workdir = tmp_path / "agent"
    agent_ini = tmp_path / "agent.ini"
    agent_ini.write_text(
        f"[agent]\ncontroller_url = {controller.url}\ntoken = {token}\nworkdir = {workdir}\n"
        f"app_user = {ME}\nallow_same_user = true\n"
    )
    staging = PyMysqlStagingDatabase.from_url(mysql_server_url)
    loop = Loop(
        world, controller, staging, git_origin, instance_id, number, sha, agent_ini, workdir
    )
    try:
        yield loop
    finally:
        loop.stop_app()
        with world.sessions() as session:
            for schema in session.scalars(select(Environment.schema_name)):
                if schema is not None:
                    staging.drop(schema)  # idempotent: nothing to drop after a passing run


def deploy_ready(loop: Loop) -> str:
    """The first pass and the agent's first run: the PR's app serves its migrated schema."""
    loop.reconcile()
    env = loop.environment()
    assert env.status is EnvironmentStatus.PROVISIONING
    schema = env.schema_name
    assert schema is not None
    assert env.schema_ready_at is not None
    assert loop.world.ec2.state_of(loop.instance_id) == "running"

    loop.agent()
    assert loop.app("/") == f"ok {loop.sha}"
    # The app reads its own schema, migrated by the PR.
    assert loop.app("/row") == "hello from the PR"
    env = loop.environment()
    assert (env.status, env.deployed_sha) == (EnvironmentStatus.READY, loop.sha)
    return schema


def test_a_pr_gets_a_live_environment_on_its_own_schema_and_loses_it_on_close(
    loop: Loop, base_schema: str, mysql_server_url: str
) -> None:
    schema = deploy_ready(loop)
    assert greeting(mysql_server_url, base_schema) == "hello from base"  # the base is untouched

    loop.world.standin.close(OWNER, NAME, loop.number)
    loop.reconcile()  # stops the instance
    loop.reconcile()  # sees it stopped: drops the schema and its user, frees the server
    env = loop.environment()
    assert env.status is EnvironmentStatus.RELEASED
    assert env.server_id is None
    assert loop.world.ec2.state_of(loop.instance_id) == "stopped"
    assert not loop.staging.exists(schema)
    assert [left for left in loop.staging.leftovers() if left.name == schema] == []

    loop.agent()
    assert loop.app("/") is None  # no assignment: the app is stopped


def as_reviewer(loop: Loop, sql: str) -> None:
    """Run ``sql`` in the PR's schema with the PR's own MySQL user, as a reviewer testing
    through the app (or a client the app's credentials were given to) would change data."""
    env = loop.environment()
    assert env.schema_name is not None
    url = make_url(loop.controller.settings.staging_mysql.url)
    password = database_password(resolve_secret_key(loop.controller.settings), env)
    with (
        contextlib.closing(
            pymysql.connect(
                host=url.host,
                port=url.port or 3306,
                user=user_name(env.schema_name),
                password=password,
                database=env.schema_name,
                autocommit=True,
            )
        ) as connection,
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)


def spans(loop: Loop, environment_id: int) -> list[tuple[datetime, datetime | None]]:
    with loop.world.sessions() as session:
        rows = session.execute(
            select(RunningSpan.started_at, RunningSpan.ended_at)
            .where(RunningSpan.environment_id == environment_id)
            .order_by(RunningSpan.id)
        ).all()
    return [(start, end) for start, end in rows]


def test_an_idle_environment_sleeps_and_wakes_with_the_data_its_reviewer_left(
    loop: Loop,
) -> None:
    started = loop.clock()
    schema = deploy_ready(loop)
    env = loop.environment()
    server_id = env.server_id
    loop.reconcile()  # sees the instance running: its running time starts now

    as_reviewer(loop, "UPDATE greeting SET message = 'edited by a reviewer' WHERE id = 1")
    assert loop.app("/row") == "edited by a reviewer"

    # Three hours without a deploy, a visit or a scenario: more than [pool] idle_stop_minutes.
    slept = loop.clock.advance(hours=3)
    loop.reconcile()  # puts it to sleep and stops its instance
    env = loop.environment()
    assert (env.status, env.sleep_reason) == (EnvironmentStatus.SLEEPING, SleepReason.IDLE)
    loop.reconcile_until(lambda: loop.world.ec2.state_of(loop.instance_id) == "stopped", "stopped")
    loop.reconcile()  # sees it stopped: its running time ends
    env = loop.environment()
    # Asleep, it keeps its server and its schema (users and data) for the PR.
    assert (env.status, env.server_id, env.schema_name) == (
        EnvironmentStatus.SLEEPING,
        server_id,
        schema,
    )
    assert loop.staging.exists(schema)

    loop.agent()  # no assignment while it sleeps: the agent stops the app
    wait_until(lambda: loop.app("/") is None, "stopped answering")

    # Five hours later a reviewer presses Wake.
    woken = loop.clock.advance(hours=5)
    loop.world.act(
        loop.number,
        lambda session, pull: actions.wake(session, pull, actor="reviewer", clock=loop.clock),
    )
    assert loop.environment().status is EnvironmentStatus.PROVISIONING
    loop.reconcile_until(lambda: loop.world.ec2.state_of(loop.instance_id) == "running", "running")
    loop.reconcile()  # sees it running: a second running time starts

    loop.agent()  # redeploys on the restarted box
    env = loop.environment()
    assert (env.status, env.server_id, env.schema_name, env.deployed_sha) == (
        EnvironmentStatus.READY,
        server_id,
        schema,
        loop.sha,
    )
    assert env.deploy_requested_at is None  # the wake's redeploy was done
    assert loop.app("/") == f"ok {loop.sha}"
    # The migration is not applied again over the reviewer's change: nothing was lost.
    assert loop.app("/row") == "edited by a reviewer"

    # Costs count the two runs, not the five hours asleep between them.
    assert spans(loop, env.id) == [(started, slept), (woken, None)]
    now = loop.clock.advance(hours=1)
    with loop.world.sessions() as session:
        costs = environment_costs(session, [env.id], until=now)
    assert costs == {env.id: Cost(hours=Decimal(4), amount=4 * PRICE)}


def test_an_agent_in_loop_mode_deploys_a_push_in_seconds_not_at_its_interval(
    loop: Loop, tmp_path: Path
) -> None:
    deploy_ready(loop)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PULLRE_")}
    log = tmp_path / "agent-loop.log"
    with log.open("w") as output:
        agent = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "client.py"), "--config", str(loop.agent_ini),
             "--loop", "--interval", "60"],
            env=environ, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        time.sleep(2)  # its first pass finds nothing new and waits on the controller
        pushed = loop.origin.fork_commit({"README": "a push\n"})
        loop.origin.open_pr(loop.number, pushed)
        loop.world.standin.push(OWNER, NAME, loop.number, pushed)
        loop.reconcile()  # the webhook's pass: the controller now wants the new sha
        started = time.monotonic()
        wait_until(lambda: loop.app("/") == f"ok {pushed}", "serving the pushed commit")
        # Far sooner than the 60 s the agent would otherwise sleep between passes.
        assert time.monotonic() - started < DEADLINE_S
    finally:
        agent.terminate()
        agent.wait(timeout=30)
    assert "cannot wait on the controller" not in log.read_text()
