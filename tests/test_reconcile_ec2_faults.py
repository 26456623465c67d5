"""The reconcile pass against a misbehaving EC2: instances mid-transition, throttling, no capacity.

Everything goes through real boto3 and HTTP to moto's server, with the fault proxy in front of
it: moto settles every start and stop at once, so the proxy rewrites DescribeInstances answers
to show an instance still ``stopping`` or ``pending``, and answers chosen calls with EC2's own
error documents. The GitHub side is the stand-in over HTTP, the controller DB a SQLite file.
"""

from __future__ import annotations

from sqlalchemy import select

from pullre.models import Environment, EnvironmentStatus, Event, PullRequest, Server
from pullre.reconcile.run import PassReport
from tests.ec2_fixtures import FaultyEc2
from tests.reconcile_fixtures import NAME, OWNER, World


def _pass(world: World, faulty: FaultyEc2) -> PassReport:
    return world.run(faulty.adapter)


def _events(world: World, kind: str) -> list[tuple[str | None, str]]:
    """(instance id or None, message) of every event of ``kind``, oldest first."""
    with world.sessions() as session:
        rows = session.execute(
            select(Server.instance_id, Event.message)
            .select_from(Event)
            .outerjoin(Server, Event.server_id == Server.id)
            .where(Event.kind == kind)
            .order_by(Event.id)
        ).all()
    return [(instance, message) for instance, message in rows]


# --- instances mid-transition ------------------------------------------------------------------


def test_a_server_still_stopping_is_not_reused_until_a_pass_sees_it_stopped(
    world: World, faulty_ec2: FaultyEc2
) -> None:
    world.add_repository()
    (server,) = world.add_servers(1)
    proxy = faulty_ec2.proxy
    one = world.standin.open_pull(OWNER, NAME)
    _pass(world, faulty_ec2)
    assert world.active() == {one: ("provisioning", server)}

    world.standin.close(OWNER, NAME, one)
    two = world.standin.open_pull(OWNER, NAME)
    report = _pass(world, faulty_ec2)
    assert report.stopped == [server]
    assert proxy.forwarded("StopInstances") == {server: 1}

    # EC2 takes its time to stop: the next two passes see the instance "stopping".
    proxy.report_state(server, "stopping", times=2)
    for _ in range(2):
        report = _pass(world, faulty_ec2)
        assert (report.released, report.assigned, report.started) == ([], [], [])
        assert world.active() == {one: ("releasing", server), two: ("queued", None)}
    assert proxy.forwarded("StartInstances") == {server: 1}  # only PR one's start
    assert proxy.forwarded("StopInstances") == {server: 1}  # never stopped twice either

    report = _pass(world, faulty_ec2)  # moto answers now: stopped
    assert report.released == [one]
    assert report.assigned == [(two, server)]
    assert world.active() == {two: ("provisioning", server)}
    assert proxy.forwarded("StartInstances") == {server: 2}


def test_a_free_server_still_stopping_is_passed_over_for_a_stopped_one(
    world: World, faulty_ec2: FaultyEc2
) -> None:
    world.add_repository()
    stopping, stopped = world.add_servers(2)
    faulty_ec2.proxy.report_state(stopping, "stopping", times=1)
    pull = world.standin.open_pull(OWNER, NAME)

    report = _pass(world, faulty_ec2)

    assert report.assigned == [(pull, stopped)]
    assert faulty_ec2.proxy.forwarded("StartInstances") == {stopped: 1}


def test_a_pending_instance_is_never_stopped(world: World, faulty_ec2: FaultyEc2) -> None:
    world.add_repository()
    held, loose = world.add_servers(2)
    proxy = faulty_ec2.proxy
    pull = world.standin.open_pull(OWNER, NAME)
    _pass(world, faulty_ec2)
    assert world.active() == {pull: ("provisioning", held)}
    world.standin.close(OWNER, NAME, pull)
    # Someone starts the other instance by hand: a running instance no PR holds.
    faulty_ec2.sandbox.client.start_instances(InstanceIds=[loose])

    # Both are still booting as far as EC2 says: the released PR's and the stray one.
    proxy.report_state(held, "pending", times=2)
    proxy.report_state(loose, "pending", times=2)
    for _ in range(2):
        report = _pass(world, faulty_ec2)
        assert report.stopped == []
        assert world.active() == {pull: ("releasing", held)}
    assert proxy.forwarded("StopInstances") == {}

    report = _pass(world, faulty_ec2)  # now both are seen running
    assert sorted(report.stopped) == sorted([held, loose])
    assert proxy.forwarded("StopInstances") == {held: 1, loose: 1}


def test_an_assigned_server_is_never_started_while_stopping(
    world: World, faulty_ec2: FaultyEc2
) -> None:
    """A pass that assigned a server and died before starting it leaves a PROVISIONING
    environment without ``start_requested_at``; the next passes start it only once stopped."""
    world.add_repository()
    (server,) = world.add_servers(1)
    proxy = faulty_ec2.proxy
    pull = world.standin.open_pull(OWNER, NAME)
    _pass(world, faulty_ec2)
    with world.sessions() as session:  # what a pass killed between assign and start leaves
        environment = session.scalars(select(Environment)).one()
        environment.start_requested_at = None
        session.commit()
    # The instance is still on its way down from a stop (by hand, or by the PR before).
    faulty_ec2.sandbox.client.stop_instances(InstanceIds=[server])
    proxy.clear()
    proxy.report_state(server, "stopping", times=2)

    for _ in range(2):
        report = _pass(world, faulty_ec2)
        assert report.started == []
    assert proxy.forwarded("StartInstances") == {}

    report = _pass(world, faulty_ec2)
    assert report.started == [server]
    assert proxy.forwarded("StartInstances") == {server: 1}
    assert world.active() == {pull: ("provisioning", server)}
    assert world.states() == {server: "running"}


# --- faults during a pass ----------------------------------------------------------------------


def test_throttled_start_is_recorded_and_the_next_pass_finishes_the_work(
    world: World, faulty_ec2: FaultyEc2
) -> None:
    world.add_repository()
    first, second = world.add_servers(2)
    proxy = faulty_ec2.proxy
    one = world.standin.open_pull(OWNER, NAME)
    two = world.standin.open_pull(OWNER, NAME)
    proxy.throttle_next(3, action="StartInstances")  # the first call and both of its retries

    report = _pass(world, faulty_ec2)

    assert proxy.count("StartInstances") == 3
    assert proxy.forwarded("StartInstances") == {}
    assert any("RequestLimitExceeded" in error for error in report.errors)
    (error,) = _events(world, "error")
    assert error[0] == first
    assert "RequestLimitExceeded" in error[1]
    # Nothing learnt is lost: both PRs are known, one holds its server, the other still waits
    # (the pass stops calling a throttling EC2 instead of deepening the throttle).
    assert world.active() == {one: ("provisioning", first), two: ("queued", None)}
    with world.sessions() as session:
        assert len(session.scalars(select(PullRequest)).all()) == 2
        held = session.scalars(select(Server).where(Server.instance_id == first)).one()
        assert "RequestLimitExceeded" in (held.last_error or "")

    report = _pass(world, faulty_ec2)

    assert report.errors == []
    assert sorted(report.started) == sorted([first, second])
    assert world.active() == {one: ("provisioning", first), two: ("provisioning", second)}
    assert world.states() == {first: "running", second: "running"}
    assert proxy.forwarded("StartInstances") == {first: 1, second: 1}


def test_throttled_describe_records_an_error_and_acts_on_nothing(
    world: World, faulty_ec2: FaultyEc2
) -> None:
    world.add_repository()
    (server,) = world.add_servers(1)
    proxy = faulty_ec2.proxy
    pull = world.standin.open_pull(OWNER, NAME)
    proxy.throttle_next(3, action="DescribeInstances")

    report = _pass(world, faulty_ec2)

    assert any("could not observe the pool" in error for error in report.errors)
    assert [message for _, message in _events(world, "error")] == [report.errors[0]]
    assert world.active() == {pull: ("queued", None)}  # synced and queued, not lost
    assert proxy.count("StartInstances") == 0

    report = _pass(world, faulty_ec2)

    assert report.errors == []
    assert world.active() == {pull: ("provisioning", server)}
    assert proxy.forwarded("StartInstances") == {server: 1}


def test_no_capacity_for_one_server_gives_the_pr_another_in_the_same_pass(
    world: World, faulty_ec2: FaultyEc2
) -> None:
    world.add_repository()
    short, spare = world.add_servers(2)
    proxy = faulty_ec2.proxy
    pull = world.standin.open_pull(OWNER, NAME)
    # Three answers: botocore retries a 500 twice before giving up.
    proxy.fail_next(3, "InsufficientInstanceCapacity", action="StartInstances")

    report = _pass(world, faulty_ec2)

    assert world.active() == {pull: ("provisioning", spare)}
    assert report.started == [spare]
    assert proxy.forwarded("StartInstances") == {spare: 1}
    assert [r.instance_ids for r in proxy.requests if r.fault] == [(short,)] * 3
    (error,) = _events(world, "error")
    assert error[0] == short
    assert "no capacity" in error[1]
    with world.sessions() as session:
        holders = session.scalars(
            select(Environment).where(Environment.status != EnvironmentStatus.RELEASED)
        ).all()
        assert [env.server.instance_id for env in holders if env.server] == [spare]
        failed = session.scalars(select(Server).where(Server.instance_id == short)).one()
        assert "InsufficientInstanceCapacity" in (failed.last_error or "")
    assert world.states() == {short: "stopped", spare: "running"}

    # The first server is free: the next PR gets it.
    other = world.standin.open_pull(OWNER, NAME)
    report = _pass(world, faulty_ec2)
    assert report.assigned == [(other, short)]
    assert world.active() == {pull: ("provisioning", spare), other: ("provisioning", short)}
