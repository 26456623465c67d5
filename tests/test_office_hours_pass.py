"""Office hours in whole reconcile passes, with a clock moved across midnight and across the
daylight-saving changes of a named zone: repositories' environments sleep and wake, servers
outside the pool are stopped and started. Real moto EC2 (behind the fault proxy where a test
needs an instance mid-transition or a refused call), the GitHub stand-in, a SQLite DB.
"""

from __future__ import annotations

from datetime import UTC, datetime, time

from sqlalchemy import select

from pullre.environments import actions
from pullre.models import Repository, Role, Schedule, Server, SleepReason, User
from pullre.reconcile.run import PassReport
from tests.clock import MovingClock
from tests.ec2_fixtures import FaultyEc2
from tests.reconcile_fixtures import NAME, OWNER, World

ADMIN = User(username="root", password_hash="-", role=Role.ADMIN)


def add_schedule(world: World, zone: str, days: list[int], opens: time, closes: time) -> int:
    with world.sessions() as session:
        schedule = Schedule(
            name=f"{zone} {opens:%H:%M}",
            time_zone=zone,
            days=days,
            opens_at=opens,
            closes_at=closes,
        )
        session.add(schedule)
        session.commit()
        return schedule.id


def schedule_state(world: World) -> str | None:
    with world.sessions() as session:
        return session.scalars(select(Repository.schedule_state)).one()


def test_a_window_past_midnight_sleeps_the_repository_and_wakes_only_the_ready_ones(
    world: World,
) -> None:
    # Fridays 18:00 to 02:00 Berlin time (CET, UTC+1, in November).
    friday_night = add_schedule(world, "Europe/Berlin", [5], time(18), time(2))
    world.add_repository(schedule_id=friday_night)
    servers = world.add_servers(6)
    clock = MovingClock(datetime(2026, 11, 27, 18, 0, tzinfo=UTC))  # Fri 19:00 in Berlin

    def run() -> PassReport:
        report = world.run(clock=clock)
        assert report.errors == []
        return report

    ready, also_ready, failed, woken_by_hand, pinned = (
        world.standin.open_pull(OWNER, NAME) for _ in range(5)
    )
    run()
    for number in (ready, also_ready, woken_by_hand, pinned):
        world.agent_deploys(number, clock)
    world.agent_deploys(failed, clock, fails=True)
    world.act(
        pinned,
        lambda s, pull: actions.pin(s, pull, user=ADMIN, reason="night demo", clock=clock),
    )
    assert schedule_state(world) is None  # no edge crossed yet: nothing to act on

    clock.now = datetime(2026, 11, 28, 0, 59, tzinfo=UTC)  # Sat 01:59: past midnight, still open
    assert run().stopped == []
    assert {status for status, _ in world.active().values()} == {"ready", "failed"}

    clock.now = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)  # Sat 02:00 in Berlin: closed
    report = run()
    assert sorted(report.stopped) == sorted(servers[:4])
    assert world.active() == {
        ready: ("sleeping", servers[0]),
        also_ready: ("sleeping", servers[1]),
        failed: ("sleeping", servers[2]),
        woken_by_hand: ("sleeping", servers[3]),
        pinned: ("ready", servers[4]),
    }
    assert world.newest(ready).sleep_reason is SleepReason.OFFICE_HOURS
    assert (world.newest(ready).ready_before_sleep, world.newest(failed).ready_before_sleep) == (
        True,
        False,
    )
    assert schedule_state(world) == "closed"
    assert world.events("office_hours_closed") == [
        f"{OWNER}/{NAME}: office hours (Europe/Berlin 18:00) closed; 4 environment(s) put to sleep"
    ]

    # At night: a new PR waits (a server is free), and a person's wake is honoured.
    clock.now = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
    late = world.standin.open_pull(OWNER, NAME)
    world.act(woken_by_hand, lambda s, pull: actions.wake(s, pull, actor="eve", clock=clock))
    report = run()
    assert (report.assigned, report.started) == ([], [servers[3]])
    clock.now = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    run()
    assert world.active()[late] == ("queued", None)
    assert world.active()[woken_by_hand] == ("provisioning", servers[3])
    assert world.ec2.state_of(servers[5]) == "stopped"

    # Saturday is no opening day: still closed at Saturday 18:00.
    clock.now = datetime(2026, 11, 28, 17, 30, tzinfo=UTC)
    assert run().started == []

    clock.now = datetime(2026, 12, 4, 17, 0, tzinfo=UTC)  # the next Friday, 18:00 in Berlin
    report = run()
    assert sorted(report.started) == sorted([servers[0], servers[1], servers[5]])
    assert world.active() == {
        ready: ("provisioning", servers[0]),
        also_ready: ("provisioning", servers[1]),
        failed: ("sleeping", servers[2]),  # it was not ready: it waits to be asked
        woken_by_hand: ("provisioning", servers[3]),
        pinned: ("ready", servers[4]),
        late: ("provisioning", servers[5]),
    }
    assert world.events("waking")[-2:] == [
        f"#{ready} wakes (office hours open)",
        f"#{also_ready} wakes (office hours open)",
    ]
    assert schedule_state(world) == "open"


def test_office_hours_follow_berlin_wall_clock_across_both_daylight_saving_changes(
    world: World,
) -> None:
    # Every day 08:00 to 18:00 Berlin time; clocks go forward on 2026-03-29 and back on
    # 2026-10-25, so the UTC instants of 08:00 move by an hour.
    daily = add_schedule(world, "Europe/Berlin", list(range(1, 8)), time(8), time(18))
    world.add_repository(schedule_id=daily)
    (server,) = world.add_servers(1)
    clock = MovingClock(datetime(2026, 3, 28, 10, 0, tzinfo=UTC))  # Sat 11:00 CET
    one = world.standin.open_pull(OWNER, NAME)

    def at(year: int, month: int, day: int, hour: int, minute: int) -> str:
        """The PR's status after a pass at that UTC instant."""
        clock.now = datetime(year, month, day, hour, minute, tzinfo=UTC)
        report = world.run(clock=clock)
        assert report.errors == []
        return world.active()[one][0]

    assert at(2026, 3, 28, 10, 0) == "provisioning"
    world.agent_deploys(one, clock)
    assert at(2026, 3, 28, 16, 59) == "ready"  # 17:59 CET
    assert at(2026, 3, 28, 17, 0) == "sleeping"  # 18:00 CET
    assert at(2026, 3, 29, 5, 59) == "sleeping"  # 07:59 CEST, the first morning of summer time
    assert at(2026, 3, 29, 6, 0) == "provisioning"  # 08:00 CEST
    assert world.ec2.state_of(server) == "running"
    world.agent_deploys(one, clock)
    assert at(2026, 3, 29, 15, 59) == "ready"  # 17:59 CEST
    assert at(2026, 3, 29, 16, 0) == "sleeping"  # 18:00 CEST
    assert world.ec2.state_of(server) == "stopped"

    assert at(2026, 10, 24, 15, 59) == "provisioning"  # 17:59 CEST: open, so woken
    world.agent_deploys(one, clock)
    assert at(2026, 10, 24, 16, 0) == "sleeping"  # 18:00 CEST
    assert at(2026, 10, 25, 6, 30) == "sleeping"  # 07:30 CET, the first morning of winter time
    assert at(2026, 10, 25, 7, 0) == "provisioning"  # 08:00 CET
    assert len(world.events("office_hours_open")) == 3


def test_a_schedule_removed_while_closed_wakes_what_slept_for_it(world: World) -> None:
    daytime = add_schedule(world, "UTC", list(range(1, 8)), time(8), time(18))
    repository_id = world.add_repository(schedule_id=daytime)
    (server,) = world.add_servers(1)
    clock = MovingClock(datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
    one = world.standin.open_pull(OWNER, NAME)
    world.run(clock=clock)
    world.agent_deploys(one, clock)
    clock.now = datetime(2026, 11, 23, 19, 0, tzinfo=UTC)
    world.run(clock=clock)
    assert world.active() == {one: ("sleeping", server)}

    with world.sessions() as session:
        repository = session.get(Repository, repository_id)
        assert repository is not None
        repository.schedule_id = None
        session.commit()
    world.run(clock=clock)
    assert world.active() == {one: ("provisioning", server)}
    assert schedule_state(world) is None


def test_a_server_outside_the_pool_is_stopped_and_started_by_its_schedule(
    world: World, faulty_ec2: FaultyEc2
) -> None:
    proxy = faulty_ec2.proxy
    # Weekdays 09:00 to 17:00 in New York (EST, UTC-5, in November).
    weekdays = add_schedule(world, "America/New_York", [1, 2, 3, 4, 5], time(9), time(17))
    (instance,) = world.ec2.create_instances(1, stopped=False)
    with world.sessions() as session:
        session.add(
            Server(instance_id=instance, name="qa-box", in_pool=False, schedule_id=weekdays)
        )
        session.commit()
    clock = MovingClock(datetime(2026, 11, 23, 17, 0, tzinfo=UTC))  # Mon 12:00 in New York

    def run(hour: int, day: int = 23) -> PassReport:
        clock.now = datetime(2026, 11, day, hour, 0, tzinfo=UTC)
        report = world.run(faulty_ec2.adapter, clock=clock)
        return report

    def state() -> tuple[str, str | None]:
        with world.sessions() as session:
            found = session.scalars(select(Server.schedule_state)).one()
        return world.ec2.state_of(instance), found

    assert run(17).stopped == []
    assert state() == ("running", None)

    proxy.report_state(instance, "pending", times=1)  # never acted on mid-transition
    assert run(22).stopped == []  # Mon 17:00 in New York
    assert state() == ("running", None)
    assert run(23).stopped == [instance]
    assert state() == ("stopped", "closed")

    # Someone starts it at night: the schedule leaves it be until its next edge.
    faulty_ec2.sandbox.client.start_instances(InstanceIds=[instance])
    assert run(3, day=24).stopped == []
    assert run(14, day=24).started == []  # Tue 09:00: open, and running already
    assert state() == ("running", "open")

    proxy.fail_next(1, "IncorrectInstanceState", action="StopInstances")
    report = run(22, day=24)  # Tue 17:00
    assert len(report.errors) == 1
    assert state() == ("running", "open")  # not recorded: the next pass tries again
    assert run(23, day=24).stopped == [instance]
    assert state() == ("stopped", "closed")

    assert run(14, day=25).started == [instance]  # Wed 09:00
    assert state() == ("running", "open")
    assert [m.split(": ", 1)[1] for m in world.events("office_hours_open")] == [
        "office hours (America/New_York 09:00) open, already running",
        f"office hours (America/New_York 09:00) open, {instance} starting",
    ]
