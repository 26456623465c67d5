"""Pass history: one row per pass that acted, costs measured as deltas, pruning that keeps sums."""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from pullre.clock import system_clock
from pullre.ec2.port import InstanceInfo
from pullre.models import PassRun, utcnow
from pullre.reconcile import history as pass_history
from pullre.reconcile import lease
from pullre.reconcile.run import LEASE_NAME
from tests.ec2_fixtures import PassThroughEc2
from tests.reconcile_fixtures import NAME, OWNER, World


def _rows(world: World) -> list[PassRun]:
    with world.sessions() as session:
        return list(session.scalars(select(PassRun).order_by(PassRun.id)))


def _costs(world: World) -> tuple[int, int, int]:
    stats = world.github.stats
    return stats.requests, stats.not_modified, sum(world.ec2.adapter.calls.values())


def test_each_pass_records_its_own_costs_and_the_pool_it_left(world: World) -> None:
    world.add_repository()
    world.add_servers(2)
    for number in range(3):
        world.standin.open_pull(OWNER, NAME, title=f"PR {number}")

    before = _costs(world)
    first = world.run()
    middle = _costs(world)
    second = world.run()  # nothing changed: one free conditional request, one describe
    after = _costs(world)

    assert first.errors == []
    assert second.errors == []
    one, two = _rows(world)
    assert (one.github_requests, one.github_not_modified, one.ec2_calls) == tuple(
        m - b for m, b in zip(middle, before, strict=True)
    )
    assert (two.github_requests, two.github_not_modified, two.ec2_calls) == tuple(
        a - m for a, m in zip(after, middle, strict=True)
    )
    assert one.github_requests > 0
    assert one.ec2_calls >= 3
    assert two.github_not_modified == 1  # the unchanged listing answered 304
    assert (one.assigned, one.released, one.errors) == (2, 0, 0)
    assert (one.busy_servers, one.pool_size, one.queued) == (2, 2, 1)
    assert (two.assigned, two.busy_servers, two.queued) == (0, 2, 1)
    assert two.rate_limit_remaining == world.github.stats.rate_limit_remaining is not None
    assert one.started_at <= two.started_at <= utcnow()
    assert one.duration_ms >= 0


def test_a_pass_that_finds_the_lease_taken_records_nothing(world: World) -> None:
    world.add_repository()
    held = lease.try_acquire(
        world.engine, LEASE_NAME, "someone-else", timedelta(minutes=5), system_clock
    )
    assert held is not None

    report = world.run()

    assert report.skipped
    assert _rows(world) == []


def test_a_history_failure_is_logged_and_never_fails_the_pass(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.add_repository()
    (server,) = world.add_servers(1)
    number = world.standin.open_pull(OWNER, NAME)
    with world.engine.begin() as connection:
        connection.execute(text("DROP TABLE pass_runs"))

    with caplog.at_level(logging.ERROR, logger="pullre.reconcile.history"):
        report = world.run()

    assert report.errors == []
    assert world.active() == {number: ("provisioning", server)}
    assert "could not record the pass history" in caplog.text


class _BrokenEc2(PassThroughEc2):
    """A port with a bug outside every per-PR guard: describe raises a plain RuntimeError."""

    def describe(self, instance_ids: Collection[str]) -> dict[str, InstanceInfo]:
        raise RuntimeError("bug in the EC2 port")


def test_a_crashed_pass_is_still_recorded_with_its_error(world: World) -> None:
    world.add_repository()
    world.add_servers(1)
    world.standin.open_pull(OWNER, NAME)

    with pytest.raises(RuntimeError, match="bug in the EC2 port"):
        world.run(_BrokenEc2(world.ec2.adapter))

    (row,) = _rows(world)
    assert (row.errors, row.assigned, row.queued) == (1, 0, 1)
    assert row.github_requests > 0  # the sync before the crash still cost what it cost


def _add(session: Session, age: timedelta, requests: int, **values: int) -> PassRun:
    run = PassRun(started_at=utcnow() - age, github_requests=requests, **values)
    session.add(run)
    session.flush()
    return run


def _totals(session: Session) -> tuple[int, ...]:
    sums = session.execute(
        select(func.max(PassRun.id), func.count())
        .add_columns(*(func.sum(getattr(PassRun, c)) for c in pass_history.ADDITIVE_COLUMNS))
        .select_from(PassRun)
    ).one()
    return tuple(int(v or 0) for v in sums)


def test_pruning_deletes_old_rows_but_keeps_every_counter_sum(session: Session) -> None:
    for days in (45, 40, 31):
        _add(session, timedelta(days=days), 100, ec2_calls=7, errors=1, assigned=2, released=1)
    kept = _add(session, timedelta(days=2), 5, github_not_modified=4, ec2_calls=1)
    newest = _add(session, timedelta(minutes=1), 3, github_not_modified=3, ec2_calls=1)
    newest_id, _count, *sums = _totals(session)

    assert pass_history.prune(session, utcnow() - pass_history.RETENTION) == 3

    assert _totals(session) == (newest_id, 2, *sums)
    remaining = session.scalars(select(PassRun).order_by(PassRun.id)).all()
    assert [r.id for r in remaining] == [kept.id, newest.id]
    assert (kept.github_requests, kept.ec2_calls, kept.errors) == (305, 22, 3)
    assert (newest.github_requests, newest.ec2_calls) == (3, 1)  # recent rows untouched


def test_pruning_never_deletes_the_newest_row(session: Session) -> None:
    _add(session, timedelta(days=90), 10)
    newest = _add(session, timedelta(days=60), 1)
    newest_id, _, *sums = _totals(session)

    assert pass_history.prune(session, utcnow()) == 1

    assert session.scalars(select(PassRun)).all() == [newest]
    assert _totals(session) == (newest_id, 1, *sums)
    assert pass_history.prune(session, utcnow()) == 0


def test_a_pass_prunes_history_older_than_thirty_days(world: World) -> None:
    world.add_repository()
    with world.sessions() as session:
        _add(session, timedelta(days=31), 1000, ec2_calls=50)
        _add(session, timedelta(days=29), 10)
        session.commit()

    world.run()

    rows = _rows(world)
    assert [r.id for r in rows] == [2, 3]
    assert rows[0].github_requests == 1010
    assert rows[0].ec2_calls == 50
