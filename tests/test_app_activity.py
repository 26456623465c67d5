"""A reviewer using the staging app itself keeps its environment awake.

The agent's side against real sockets of this machine's kernel (``/proc/net/tcp``, so these
tests need Linux, like the staging boxes the agent runs on): a server
socket on a free port stands for the app, a client connection for the reviewer. The
controller's side through a whole reconcile pass: an environment whose agent reports its app in
use is not put to sleep by idle sleep.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from pullre.agent import activity, state
from pullre.environments import agent_reports
from pullre.models import Server
from pullre.policies.savings import PoolPolicies
from tests.agent_fixtures import Agent, FakeController, OriginRepo
from tests.clock import MovingClock
from tests.reconcile_fixtures import NAME, OWNER, World
from tests.test_pool_policies import T0


@pytest.fixture
def app_socket() -> Iterator[socket.socket]:
    """A listening socket on a free loopback port: the app, as far as the kernel can tell."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield server
    server.close()


def port_of(sock: socket.socket) -> int:
    port: int = sock.getsockname()[1]
    return port


def seen(port: int, probed_at: float | None = None) -> bool | None:
    return activity.in_use(activity.sample(port), probed_at)


def test_a_connected_client_is_use_and_a_listening_app_alone_is_not(
    app_socket: socket.socket,
) -> None:
    port = port_of(app_socket)
    found = activity.sample(port)
    assert found is not None
    assert (found.established, found.time_wait) == (0, 0)
    assert seen(port) is False  # the LISTEN socket is not a client

    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = app_socket.accept()
    try:
        found = activity.sample(port)
        assert found is not None
        assert found.established == 1
        assert seen(port) is True
        # An open connection is a client even right after the agent's own checks.
        assert seen(port, probed_at=time.time()) is True
    finally:
        client.close()
        accepted.close()


def test_a_connection_the_app_closed_is_still_seen_for_a_minute_unless_the_agent_probed(
    app_socket: socket.socket,
) -> None:
    port = port_of(app_socket)
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = app_socket.accept()
    accepted.sendall(b"HTTP/1.0 200 OK\r\n\r\nhello")
    accepted.close()  # the app closes first (HTTP/1.0, or a keep-alive timeout) ...
    assert client.recv(100).startswith(b"HTTP/1.0 200")
    client.close()  # ... so the app's side of the connection lingers in TIME_WAIT

    found = _wait_for(port, lambda s: s.time_wait > 0)
    assert found.established == 0
    assert found.time_wait == 1
    assert activity.in_use(found, probed_at=None) is True  # a request in the last minute
    # Within a minute after the agent's own health or smoke checks it could be theirs.
    assert activity.in_use(found, probed_at=found.at - 5) is False
    assert activity.in_use(found, probed_at=found.at - activity.TIME_WAIT_S - 1) is True


def test_a_connection_the_client_closed_leaves_nothing_on_the_app_port(
    app_socket: socket.socket,
) -> None:
    port = port_of(app_socket)
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = app_socket.accept()
    client.close()  # the client closes first: its side keeps the TIME_WAIT, not the app's
    assert accepted.recv(10) == b""
    accepted.close()

    found = _wait_for(port, lambda s: s.established == 0)
    assert (found.established, found.time_wait) == (0, 0)
    assert activity.in_use(found, probed_at=None) is False


def test_only_the_app_port_counts_not_the_port_a_client_connects_from(
    app_socket: socket.socket,
) -> None:
    other = socket.socket()
    other.bind(("127.0.0.1", 0))
    other.listen()
    try:
        client = socket.create_connection(("127.0.0.1", port_of(other)))
        accepted, _ = other.accept()
        try:
            # This connection's client side has a remote port equal to other's, and a local
            # ephemeral port; neither is the app's.
            assert seen(port_of(app_socket)) is False
            assert seen(port_of(other)) is True
        finally:
            client.close()
            accepted.close()
    finally:
        other.close()


def test_without_proc_nobody_can_tell(tmp_path: Path) -> None:
    assert activity.sample(8080, proc_net=tmp_path / "nowhere") is None
    assert activity.in_use(None, probed_at=None) is None
    assert activity.either(None, None) is None
    assert activity.either(None, False) is False
    assert activity.either(True, None) is True
    assert activity.either(False, True) is True


def test_an_ipv6_table_is_read_too(tmp_path: Path) -> None:
    """The line shapes of both tables, as Linux writes them (port 8080 = 0x1F90)."""
    header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt\n"
    (tmp_path / "tcp").write_text(
        header
        + "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000\n"
        + "   1: 0100007F:1F90 0100007F:D431 06 00000000:00000000 03:00000F9A 00000000\n"
        + "   2: 0100007F:D431 0100007F:1F90 01 00000000:00000000 00:00000000 00000000\n"
    )
    (tmp_path / "tcp6").write_text(
        header
        + "   0: 00000000000000000000000001000000:1F90 "
        + "00000000000000000000000001000000:C350 01 00000000:00000000 00:00000000 00000000\n"
    )
    found = activity.sample(8080, proc_net=tmp_path, now=100.0)
    assert found == activity.Sample(100.0, established=1, time_wait=1)


def _wait_for(port: int, done: Callable[[activity.Sample], bool]) -> activity.Sample:
    """The kernel moves sockets through FIN states asynchronously; give it a moment."""
    deadline = time.monotonic() + 5
    while True:
        found = activity.sample(port)
        assert found is not None
        if done(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.01)


# -- the agent's pass: its heartbeat carries what the app port saw ------------------------------


def test_the_heartbeat_says_whether_the_app_had_clients(
    agent: Agent, fake_controller: FakeController, git_origin: OriginRepo
) -> None:
    sha = git_origin.commit({"README": "pr 12\n"}, "pr work")
    git_origin.open_pr(12, sha)
    fake_controller.assignment = git_origin.assignment(12, sha)
    port = git_origin.port

    assert agent.run() == 0  # deploys; its health check closed its connection, app first
    assert agent.state().app is not None
    assert agent.state().app.port == port  # type: ignore[union-attr]
    assert fake_controller.heartbeats()[-1]["app_in_use"] is False

    # A reviewer's browser holds a connection open to the app (a keep-alive between clicks).
    fake_controller.clear()
    browser = socket.create_connection(("127.0.0.1", port))
    try:
        browser.sendall(b"GET / HTTP/1.1\r\nHost: stage\r\n")  # headers still coming
        assert agent.run() == 0
        assert fake_controller.steps() == []  # nothing to deploy: only the sample says "used"
        assert fake_controller.heartbeats()[-1]["app_in_use"] is True
    finally:
        browser.close()

    # Over a minute after the deploy's checks: a request answered and closed since the last
    # pass still shows, as the app side's TIME_WAIT (the sample app speaks HTTP/1.0 and closes
    # first, as servers ending a keep-alive do).
    backdate_probes(agent, seconds=activity.TIME_WAIT_S + 5)
    before = activity.sample(port)
    assert before is not None
    assert agent.get(port) == f"ok {sha}"
    after = _wait_for(port, lambda s: s.time_wait > before.time_wait)
    assert after.established == 0
    assert after.time_wait > before.time_wait
    fake_controller.clear()
    assert agent.run() == 0
    assert fake_controller.heartbeats()[-1]["app_in_use"] is True


def test_the_agents_own_checks_right_before_the_heartbeat_are_not_a_reviewer(
    agent: Agent, fake_controller: FakeController, git_origin: OriginRepo
) -> None:
    sha = git_origin.commit({"README": "pr 12\n"}, "pr work")
    git_origin.open_pr(12, sha)
    fake_controller.assignment = git_origin.assignment(12, sha)
    assert agent.run() == 0
    fake_controller.clear()
    fake_controller.assignment = git_origin.assignment(12, sha, redeploy=True)

    assert agent.run() == 0  # a redeploy: a new app, health-checked again in this pass

    assert ("health", "ok") in fake_controller.steps()
    assert fake_controller.heartbeats()[-1]["app_in_use"] is False


def backdate_probes(agent: Agent, *, seconds: float) -> None:
    """Move the agent's last own check back in time in its state file, as a later pass sees it."""
    current = agent.state()
    assert current.app_probed_at is not None
    current.app_probed_at -= seconds
    state.save(agent.settings.workdir, current)


# -- the controller: an environment in use is not put to sleep -----------------------------------


def test_an_environment_whose_app_is_in_use_does_not_fall_asleep(world: World) -> None:
    clock = MovingClock(T0)
    policies = PoolPolicies(idle_stop=timedelta(minutes=30))
    world.add_repository()
    busy_box, idle_box = world.add_servers(2)
    busy = world.standin.open_pull(OWNER, NAME)
    idle = world.standin.open_pull(OWNER, NAME)
    world.run(clock=clock, policies=policies)
    world.agent_deploys(busy, clock)
    world.agent_deploys(idle, clock)
    world.run(clock=clock, policies=policies)
    assert world.active() == {busy: ("ready", busy_box), idle: ("ready", idle_box)}

    # Three hours of a reviewer clicking through busy's staging app, and nobody at idle's;
    # both agents send a heartbeat every minute, as the agent API records it.
    for _ in range(3 * 60):
        clock.advance(minutes=1)
        heartbeat(world, busy, app_in_use=True, clock=clock)
        heartbeat(world, idle, app_in_use=False, clock=clock)
        if clock.now.minute % 10 == 0:
            world.run(clock=clock, policies=policies)

    assert world.active() == {busy: ("ready", busy_box), idle: ("sleeping", idle_box)}
    assert world.newest(busy).last_activity_at is not None
    assert not any(f"#{busy} " in message for message in world.events("sleeping"))

    # The reviewer leaves: half an hour later busy sleeps too.
    clock.advance(minutes=31)
    heartbeat(world, busy, app_in_use=False, clock=clock)
    world.run(clock=clock, policies=policies)
    assert world.active()[busy] == ("sleeping", busy_box)


def heartbeat(world: World, number: int, *, app_in_use: bool, clock: MovingClock) -> None:
    environment = world.newest(number)
    with world.sessions() as session:
        server = session.scalars(select(Server).where(Server.id == environment.server_id)).one()
        agent_reports.record_heartbeat(
            session,
            server,
            agent_version="0.1.0",
            deployed_sha=environment.pull_request.head_sha,
            environment_id=environment.id,
            app_in_use=app_in_use,
            clock=clock,
        )
        session.commit()
