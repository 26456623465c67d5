"""Reporting to GitHub runs under a lease of its own: a pass never waits behind the last one's
paced GitHub writes, and a reporter at work is never interrupted by a pass."""

from __future__ import annotations

from datetime import timedelta

from pullre.clock import system_clock
from pullre.reconcile import lease
from pullre.reconcile.run import LEASE_NAME, REPORT_LEASE_NAME, report_pass
from tests.reconcile_fixtures import NAME, OWNER, World
from tests.test_reporting import comments

TTL = timedelta(seconds=60)


def test_a_pass_assigns_while_another_reporter_holds_the_report_lease(world: World) -> None:
    world.add_repository()
    world.add_servers(1)
    number = world.standin.open_pull(OWNER, NAME, title="Busy minute")
    reporter = lease.try_acquire(
        world.engine, REPORT_LEASE_NAME, "slow reporter", TTL, system_clock
    )
    assert reporter is not None
    try:
        report = world.run()
        # Sync, assignment and EC2 went ahead; the report waits for the reporter at work.
        assert not report.skipped
        assert len(report.started) == 1
        assert world.environments()[number][0] == "provisioning"
        assert comments(world, number) == []
    finally:
        reporter.release()
    # Its digests stayed stale, so the next reporter sends what the skipped one did not.
    assert report_pass(world.engine, world.github, lease_ttl=TTL) == []
    assert len(comments(world, number)) == 1


def test_reporting_goes_on_while_a_pass_holds_the_reconcile_lease(world: World) -> None:
    world.add_repository()
    world.add_servers(1)
    number = world.standin.open_pull(OWNER, NAME, title="Queued")
    reporter = lease.try_acquire(
        world.engine, REPORT_LEASE_NAME, "slow reporter", TTL, system_clock
    )
    assert reporter is not None
    try:
        world.run()  # synced and assigned; its report skipped
    finally:
        reporter.release()
    running_pass = lease.try_acquire(world.engine, LEASE_NAME, "long pass", TTL, system_clock)
    assert running_pass is not None
    try:
        assert report_pass(world.engine, world.github, lease_ttl=TTL) == []
    finally:
        running_pass.release()
    assert len(comments(world, number)) == 1
