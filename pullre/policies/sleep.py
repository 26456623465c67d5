"""Sleeping and waking an environment: its instance stops, its server and schema stay the PR's.

Like every decision, these only change the database: the pool operations stop a sleeping
environment's running instance, and start a woken one's stopped instance, on the next pass.
A woken environment goes back to ``provisioning`` with a redeploy asked, so it is ``ready``
again only once its agent has deployed and health-checked the app on the restarted box.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from pullre import events
from pullre.clock import Clock
from pullre.environments.active import active_environment
from pullre.models import Environment, EnvironmentStatus, PullRequest, SleepReason

#: Statuses an environment may be put to sleep from: it holds a running box and is not in the
#: middle of being set up (a sleep then would waste the boot it just paid for).
SLEEPABLE = frozenset({EnvironmentStatus.READY, EnvironmentStatus.FAILED})

REASON_TEXT = {
    SleepReason.IDLE: "idle",
    SleepReason.OFFICE_HOURS: "outside office hours",
    SleepReason.BY_HAND: "put to sleep by hand",
}


def last_touched(environment: Environment) -> datetime:
    """When this stay last saw anyone or anything: idle sleep and expiry count from here."""
    moments = [
        environment.last_activity_at,
        environment.deployed_at,
        environment.ready_at,
        environment.assigned_at,
    ]
    return max((m for m in moments if m is not None), default=environment.queued_at)


def touch(session: Session, pull: PullRequest, clock: Clock) -> Environment | None:
    """Someone looked at or used the PR's environment: it is not idle, and expiry starts over."""
    environment = active_environment(session, pull)
    if environment is not None:
        environment.last_activity_at = clock()
        environment.expiry_warned_at = None
    return environment


def put_to_sleep(
    session: Session,
    environment: Environment,
    *,
    reason: SleepReason,
    clock: Clock,
    actor: str | None = None,
) -> None:
    pull = environment.pull_request
    environment.ready_before_sleep = environment.status is EnvironmentStatus.READY
    environment.status = EnvironmentStatus.SLEEPING
    environment.sleep_reason = reason
    environment.slept_at = clock()
    why = f"put to sleep by {actor}" if actor else REASON_TEXT[reason]
    events.record(
        session,
        "sleeping",
        f"#{pull.number} sleeps ({why})",
        pull_request=pull,
        server=environment.server,
        reason=reason.value,
        actor=actor,
    )


def wake(
    session: Session, environment: Environment, *, why: str, clock: Clock, actor: str | None = None
) -> bool:
    """Start a sleeping environment again; False (and nothing done) when it is not asleep."""
    if environment.status is not EnvironmentStatus.SLEEPING:
        return False
    now = clock()
    pull = environment.pull_request
    environment.status = EnvironmentStatus.PROVISIONING
    environment.start_requested_at = None  # this stay's earlier start must not hold this one back
    environment.deploy_requested_at = now  # the restarted box deploys afresh, then reports ready
    environment.last_activity_at = now
    environment.expiry_warned_at = None
    environment.sleep_reason = None
    environment.slept_at = None
    environment.ready_before_sleep = False
    by = f" by {actor}" if actor else ""
    events.record(
        session,
        "waking",
        f"#{pull.number} wakes ({why}{by})",
        pull_request=pull,
        server=environment.server,
    )
    return True
