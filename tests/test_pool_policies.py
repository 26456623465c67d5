"""The pool policies in whole reconcile passes: idle sleep and wake, reclaim, expiry, pins.

Everything is real but the clock: moto's EC2 server, the GitHub stand-in through PyGithub, a
SQLite controller DB and, where a schema's fate matters, the staging MariaDB. The agent's part
is played through ``agent_reports.record_step``, the call the agent API makes.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pymysql
import pytest
from sqlalchemy import make_url, select

from pullre.environments import actions, deploys
from pullre.models import EnvironmentStatus, PullRequest, Role, Server, SleepReason, User
from pullre.policies import sleep
from pullre.policies.savings import PoolPolicies
from pullre.reconcile.run import PassReport
from pullre.staging_db.database import PyMysqlStagingDatabase
from tests.clock import MovingClock
from tests.reconcile_fixtures import NAME, OWNER, World

#: A Monday morning.
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@dataclass
class Staging:
    """The staging MariaDB with a base schema to clone, and a way to read a PR's data."""

    database: PyMysqlStagingDatabase
    base: str
    url: str

    def greeting(self, schema: str) -> str:
        with self._cursor() as cursor:
            cursor.execute(f"SELECT message FROM `{schema}`.greeting ORDER BY id LIMIT 1")
            row = cursor.fetchone()
        assert row is not None
        return str(row[0])

    def write(self, schema: str, message: str) -> None:
        """What a reviewer's clicks leave in the PR's own database."""
        with self._cursor() as cursor:
            cursor.execute(f"UPDATE `{schema}`.greeting SET message = %s", (message,))

    @contextlib.contextmanager
    def _cursor(self) -> Iterator[Any]:
        url = make_url(self.url)
        connection = pymysql.connect(
            host=url.host,
            port=url.port or 3306,
            user=url.username,
            password=url.password or "",
            autocommit=True,
        )
        try:
            with connection.cursor() as cursor:
                yield cursor
        finally:
            connection.close()


@pytest.fixture
def staging(mysql_server_url: str) -> Iterator[Staging]:
    database = PyMysqlStagingDatabase.from_url(mysql_server_url)
    found = Staging(database, f"shop_base_{secrets.token_hex(4)}", mysql_server_url)
    with found._cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{found.base}` CHARACTER SET utf8mb4")
        cursor.execute(
            f"CREATE TABLE `{found.base}`.greeting (id INT PRIMARY KEY AUTO_INCREMENT, "
            "message VARCHAR(100) NOT NULL)"
        )
        cursor.execute(f"INSERT INTO `{found.base}`.greeting (message) VALUES ('from base')")
    yield found
    with found._cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{found.base}`")


@pytest.fixture
def repository(world: World, staging: Staging) -> Iterator[int]:
    """acme/shop with a base schema; its id is random so its PR schemas (``pr_<id>_<n>``)
    cannot meet those of another test run on the same MariaDB."""
    repository_id = world.add_repository(
        id=secrets.randbelow(10**8) + 10**8, base_schema=staging.base
    )
    yield repository_id
    for left in staging.database.leftovers(f"pr_{repository_id}_"):
        staging.database.drop(left.name)


def assignment(world: World, instance_id: str, staging: Staging) -> dict[str, Any] | None:
    """What the agent on ``instance_id`` is told to run on its next pass."""
    with world.sessions() as session:
        server = session.scalars(select(Server).where(Server.instance_id == instance_id)).one()
        return deploys.assignment(
            session,
            server,
            staging_mysql_url=staging.url,
            secret_key="",
            github_api_url=world.standin.url,
        )


def test_an_idle_environment_sleeps_with_its_data_and_wakes_on_push_button_and_redeploy(
    world: World, staging: Staging, repository: int
) -> None:
    clock = MovingClock(T0)
    policies = PoolPolicies(idle_stop=timedelta(hours=2))

    def run() -> PassReport:
        report = world.run(clock=clock, policies=policies, staging=staging.database)
        assert report.errors == []
        return report

    (server,) = world.add_servers(1)
    one = world.standin.open_pull(OWNER, NAME)
    run()
    schema = world.newest(one).schema_name
    assert schema is not None
    world.agent_deploys(one, clock)
    staging.write(schema, "left by a reviewer")

    clock.advance(hours=1, minutes=59)
    assert run().stopped == []
    assert world.active() == {one: ("ready", server)}

    clock.advance(minutes=1)
    report = run()
    assert world.active() == {one: ("sleeping", server)}  # the server stays the PR's
    assert report.stopped == [server]
    assert world.states() == {server: "stopped"}
    slept = world.newest(one)
    assert (slept.sleep_reason, slept.slept_at, slept.ready_before_sleep) == (
        SleepReason.IDLE,
        clock.now,
        True,
    )
    assert assignment(world, server, staging) is None  # the agent stops the app
    assert world.events("sleeping") == [f"#{one} sleeps (idle)"]

    # Later passes neither release it, nor start it, nor give its server away, nor re-clone.
    clock.advance(hours=6)
    report = run()
    assert (report.started, report.stopped, report.released, report.assigned) == ([], [], [], [])
    assert world.active() == {one: ("sleeping", server)}

    def wakes_and_redeploys(head_sha: str) -> None:
        report = run()
        assert report.started == [server]
        assert world.active() == {one: ("provisioning", server)}
        assert world.states() == {server: "running"}
        assigned = assignment(world, server, staging)
        assert assigned is not None
        assert (assigned["redeploy"], assigned["head_sha"]) == (True, head_sha)
        assert run().started == []  # started once per wake
        world.agent_deploys(one, clock)
        assert world.active() == {one: ("ready", server)}
        assert staging.greeting(schema) == "left by a reviewer"  # the same data, not a clone

    pushed = world.standin.push(OWNER, NAME, one)
    wakes_and_redeploys(pushed)

    clock.advance(hours=2)
    run()
    assert world.active() == {one: ("sleeping", server)}
    world.act(one, lambda s, pull: actions.wake(s, pull, actor="alice", clock=clock))
    wakes_and_redeploys(pushed)

    clock.advance(hours=2)
    run()
    assert world.active() == {one: ("sleeping", server)}
    world.act(one, lambda s, pull: actions.redeploy(s, pull, actor="bob", clock=clock))
    wakes_and_redeploys(pushed)

    assert world.events("waking") == [
        f"#{one} wakes (pushed {pushed[:7]})",
        f"#{one} wakes (woken by alice)",
        f"#{one} wakes (redeploy asked by bob)",
    ]


def test_a_failed_environment_sleeps_too_but_one_setting_up_does_not(world: World) -> None:
    clock = MovingClock(T0)
    policies = PoolPolicies(idle_stop=timedelta(minutes=30))
    world.add_repository()
    first, second = world.add_servers(2)
    broken = world.standin.open_pull(OWNER, NAME)
    slow = world.standin.open_pull(OWNER, NAME)
    world.run(clock=clock, policies=policies)
    world.agent_deploys(broken, clock, fails=True)

    clock.advance(hours=5)
    world.run(clock=clock, policies=policies)
    # A box that never reported is still setting up: sleeping it would waste the boot.
    assert world.active() == {broken: ("sleeping", first), slow: ("provisioning", second)}
    assert world.newest(broken).ready_before_sleep is False


def test_a_sleeping_server_is_reclaimed_for_a_pr_that_waited_and_its_pr_queues_at_the_back(
    world: World, staging: Staging, repository: int
) -> None:
    clock = MovingClock(T0)
    policies = PoolPolicies(
        idle_stop=timedelta(hours=1), reclaim_sleeping_after=timedelta(minutes=30)
    )

    def run() -> PassReport:
        report = world.run(clock=clock, policies=policies, staging=staging.database)
        assert report.errors == []
        return report

    first, second = world.add_servers(2)
    early = world.standin.open_pull(OWNER, NAME)
    late = world.standin.open_pull(OWNER, NAME)
    run()
    world.agent_deploys(early, clock)
    clock.advance(minutes=10)
    world.agent_deploys(late, clock)
    early_schema = world.newest(early).schema_name
    assert early_schema is not None

    clock.advance(hours=1)
    run()  # both idle now; the one idle longer has slept longer
    assert world.active() == {early: ("sleeping", first), late: ("sleeping", second)}

    clock.advance(minutes=5)
    waiting = world.standin.open_pull(OWNER, NAME)
    run()
    assert world.active()[waiting] == ("queued", None)

    clock.advance(minutes=30)  # exactly the policy's wait: not longer yet
    behind = world.standin.open_pull(OWNER, NAME)
    assert run().released == []

    clock.advance(minutes=15)
    report = run()
    # One sleeper for the one PR that waited, the longest asleep; freed and handed over at once.
    reason = f"reclaimed for {OWNER}/{NAME}#{waiting}, which waited 45 min"
    assert report.released == [early]
    assert world.environments()[early] == ("released", None)
    assert world.active()[waiting] == ("provisioning", first)
    assert world.newest(early).release_reason == reason
    assert world.events("reclaimed") == [
        f"#{early} gives its sleeping server to {OWNER}/{NAME}#{waiting} ({reason})"
    ]
    assert not staging.database.exists(early_schema)  # its data goes with the server
    assert world.active()[late] == ("sleeping", second)
    assert world.active()[behind] == ("queued", None)

    # The reclaimed PR queues again once its stay ended, behind the PRs already waiting.
    clock.advance(minutes=1)
    assert run().released == []
    requeued = world.newest(early)
    assert (requeued.status, requeued.queued_at) == (EnvironmentStatus.QUEUED, clock.now)
    assert requeued.queued_at > world.newest(behind).queued_at

    clock.advance(minutes=20)  # ``behind`` has waited 31 min now, ``early`` 20
    report = run()
    assert report.released == [late]
    assert world.active() == {
        early: ("queued", None),
        waiting: ("provisioning", first),
        behind: ("provisioning", second),
    }

    # Nothing sleeps any more: the queue waits however long, and nothing else is released.
    clock.advance(hours=3)
    assert run().released == []
    assert len(world.events("reclaimed")) == 2


def test_no_reclaim_while_a_server_is_being_released(world: World) -> None:
    clock = MovingClock(T0)
    policies = PoolPolicies(idle_stop=timedelta(hours=1), reclaim_sleeping_after=timedelta(0))
    world.add_repository()
    first, second = world.add_servers(2)
    sleeper = world.standin.open_pull(OWNER, NAME)
    closing = world.standin.open_pull(OWNER, NAME)
    world.run(clock=clock, policies=policies)
    world.agent_deploys(sleeper, clock)
    clock.advance(hours=2)
    world.run(clock=clock, policies=policies)
    assert world.active() == {sleeper: ("sleeping", first), closing: ("provisioning", second)}

    world.standin.close(OWNER, NAME, closing)
    waiting = world.standin.open_pull(OWNER, NAME)
    assert world.run(clock=clock, policies=policies).stopped == [second]
    clock.advance(minutes=1)
    # ``waiting`` has waited now, but the closed PR's server is on its way back to the pool.
    report = world.run(clock=clock, policies=policies)
    assert report.released == [closing]
    assert world.active() == {sleeper: ("sleeping", first), waiting: ("provisioning", second)}
    assert world.events("reclaimed") == []


def test_an_untouched_environment_is_warned_then_released_and_its_pr_parked(
    world: World,
) -> None:
    clock = MovingClock(T0)
    policies = PoolPolicies(ttl=timedelta(hours=48), expiry_warning=timedelta(hours=8))
    world.add_repository()
    (server,) = world.add_servers(1)
    one = world.standin.open_pull(OWNER, NAME)
    world.run(clock=clock, policies=policies)
    world.agent_deploys(one, clock)

    clock.advance(hours=39, minutes=59)
    world.run(clock=clock, policies=policies)
    assert world.newest(one).expiry_warned_at is None

    clock.advance(minutes=1)
    world.run(clock=clock, policies=policies)
    assert world.newest(one).expiry_warned_at == clock.now
    assert world.events("expiry_warning") == [
        f"#{one} expires at {T0 + timedelta(hours=48):%Y-%m-%d %H:%M} UTC unless used"
    ]

    # Someone opens the page: the count starts over, and so does the warning.
    world.act(one, lambda s, pull: sleep.touch(s, pull, clock))
    assert world.newest(one).expiry_warned_at is None
    touched = clock.now

    clock.advance(hours=47)
    world.run(clock=clock, policies=policies)
    assert world.newest(one).expiry_warned_at == clock.now
    assert len(world.events("expiry_warning")) == 2

    clock.now = touched + timedelta(hours=48)
    report = world.run(clock=clock, policies=policies)
    assert report.stopped == [server]
    expired = world.newest(one)
    assert expired.status is EnvironmentStatus.RELEASING
    assert expired.release_reason == "expired: untouched for 48 h"
    assert world.events("expired") == [
        f"#{one} releases its environment (expired: untouched for 48 h)"
    ]

    clock.advance(minutes=1)
    world.run(clock=clock, policies=policies)
    clock.advance(minutes=1)
    world.run(clock=clock, policies=policies)
    assert world.active() == {}  # parked: not queued straight back
    with world.sessions() as session:
        assert session.scalars(select(PullRequest.parked)).one() is True

    world.standin.push(OWNER, NAME, one)  # new work asks for an environment again
    world.run(clock=clock, policies=policies)
    assert world.active() == {one: ("provisioning", server)}


def test_no_release_without_a_warning_in_an_earlier_pass(world: World) -> None:
    """A controller down for days warns first, even when the stay is long past its TTL."""
    clock = MovingClock(T0)
    policies = PoolPolicies(
        idle_stop=timedelta(hours=1), ttl=timedelta(hours=24), expiry_warning=timedelta(0)
    )
    world.add_repository()
    (server,) = world.add_servers(1)
    one = world.standin.open_pull(OWNER, NAME)
    world.run(clock=clock, policies=policies)
    world.agent_deploys(one, clock)
    clock.advance(hours=2)
    world.run(clock=clock, policies=policies)
    assert world.active() == {one: ("sleeping", server)}  # a sleeper expires too

    clock.advance(days=5)
    report = world.run(clock=clock, policies=policies)
    assert world.active() == {one: ("sleeping", server)}
    assert world.newest(one).expiry_warned_at == clock.now
    assert report.released == []
    # The same instant again (a second pass within the clock's resolution) is no later pass.
    world.run(clock=clock, policies=policies)
    assert world.active() == {one: ("sleeping", server)}

    clock.advance(minutes=1)
    report = world.run(clock=clock, policies=policies)
    assert report.released == [one]  # its instance was stopped already: freed at once
    assert world.newest(one).release_reason == "expired: untouched for 122 h"


def test_a_deploy_after_a_warning_makes_it_stale(world: World) -> None:
    clock = MovingClock(T0)
    policies = PoolPolicies(ttl=timedelta(hours=10), expiry_warning=timedelta(hours=2))
    world.add_repository()
    world.add_servers(1)
    one = world.standin.open_pull(OWNER, NAME)
    world.run(clock=clock, policies=policies)
    world.agent_deploys(one, clock)
    clock.advance(hours=8)
    world.run(clock=clock, policies=policies)
    assert world.newest(one).expiry_warned_at == clock.now

    clock.advance(hours=1)
    world.agent_deploys(one, clock)  # the agent deployed again: the stay is in use
    clock.advance(hours=2)  # 11 h after the warning's count began, 2 h after the deploy
    world.run(clock=clock, policies=policies)
    assert world.newest(one).status is EnvironmentStatus.READY
    assert world.newest(one).expiry_warned_at is None


ADMIN = User(username="root", password_hash="-", role=Role.ADMIN)


def pin(world: World, number: int, clock: MovingClock) -> None:
    world.act(
        number,
        lambda s, pull: actions.pin(s, pull, user=ADMIN, reason="demo on Friday", clock=clock),
    )


def test_a_pinned_environment_neither_sleeps_nor_expires_nor_is_reclaimed(world: World) -> None:
    clock = MovingClock(T0)
    policies = PoolPolicies(
        idle_stop=timedelta(hours=1),
        reclaim_sleeping_after=timedelta(0),
        ttl=timedelta(hours=4),
        expiry_warning=timedelta(hours=1),
    )
    world.add_repository()
    first, second = world.add_servers(2)
    awake = world.standin.open_pull(OWNER, NAME)
    asleep = world.standin.open_pull(OWNER, NAME)
    world.run(clock=clock, policies=policies)
    world.agent_deploys(awake, clock)
    world.agent_deploys(asleep, clock)
    world.act(asleep, lambda s, pull: actions.put_to_sleep(s, pull, actor="bob", clock=clock))
    pin(world, awake, clock)
    pin(world, asleep, clock)

    waiting = world.standin.open_pull(OWNER, NAME)
    for _ in range(3):
        clock.advance(days=1)
        report = world.run(clock=clock, policies=policies)
        assert report.released == []
    assert world.active() == {
        awake: ("ready", first),
        asleep: ("sleeping", second),
        waiting: ("queued", None),
    }
    assert world.events("expiry_warning") == world.events("reclaimed") == []

    # Unpinned, the same rules apply at once.
    world.act(asleep, lambda s, pull: actions.unpin(s, pull, user=ADMIN))
    clock.advance(minutes=1)
    world.run(clock=clock, policies=policies)
    assert world.newest(asleep).expiry_warned_at == clock.now
    # Reclaimed for the waiting PR; its instance was stopped, so freed and handed over at once.
    assert world.environments()[asleep] == ("released", None)
    assert world.active() == {awake: ("ready", first), waiting: ("provisioning", second)}


def test_pinned_prs_go_first_in_the_queue(world: World) -> None:
    clock = MovingClock(T0)
    world.add_repository()
    world.add_servers(1)
    holder = world.standin.open_pull(OWNER, NAME)
    older = world.standin.open_pull(OWNER, NAME)
    pinned = world.standin.open_pull(OWNER, NAME)
    world.run(clock=clock)
    pin(world, pinned, clock)

    world.standin.close(OWNER, NAME, holder)
    clock.advance(minutes=1)
    world.run(clock=clock)
    clock.advance(minutes=1)
    world.run(clock=clock)
    assert world.active()[pinned][0] == "provisioning"
    assert world.active()[older] == ("queued", None)
