"""What the pool's money-saving policies mean for one PR now: sleep, pin, expiry, waits, cost.

The PR page, the visit link and the API all say the same things about a PR, so they read them
here: why and since when its environment sleeps, who pinned it, when it expires, why its last
stay ended, whether it waits for office hours, and what its running time has cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from pullre.cost.pricing import Cost, pull_costs
from pullre.models import (
    Environment,
    EnvironmentStatus,
    Event,
    PullRequest,
    Repository,
    SleepReason,
)
from pullre.policies import office_hours
from pullre.policies.savings import EXPIRABLE
from pullre.policies.sleep import REASON_TEXT, last_touched

_CENT = Decimal("0.01")
_SMALL = Decimal("0.0001")


@dataclass(frozen=True)
class Sleeping:
    since: datetime
    reason: SleepReason
    #: Who put it to sleep by hand, when it was a person.
    by: str | None = None
    #: When office hours open again, for one that was ready when they closed (it wakes then).
    wakes_at: str | None = None

    @property
    def why(self) -> str:
        if self.by:
            return f"put to sleep by {self.by}"
        return REASON_TEXT[self.reason]


@dataclass(frozen=True)
class Pin:
    by: str
    reason: str
    at: datetime


def sleeping(
    session: Session, environment: Environment | None, repository: Repository, now: datetime
) -> Sleeping | None:
    if environment is None or environment.status is not EnvironmentStatus.SLEEPING:
        return None
    reason = environment.sleep_reason or SleepReason.IDLE
    by = None
    if reason is SleepReason.BY_HAND:
        event = session.scalar(
            select(Event)
            .where(Event.pull_request_id == environment.pull_request_id, Event.kind == "sleeping")
            .order_by(Event.id.desc())
            .limit(1)
        )
        actor = event.details.get("actor") if event is not None else None
        by = actor if isinstance(actor, str) else None
    wakes_at = None
    schedule = repository.schedule
    if reason is SleepReason.OFFICE_HOURS and environment.ready_before_sleep and schedule:
        opens = office_hours.next_change(schedule, now)
        if opens is not None and not office_hours.is_open(schedule, now):
            wakes_at = office_hours.format_in_zone(schedule, opens)
    return Sleeping(
        since=environment.slept_at or last_touched(environment),
        reason=reason,
        by=by,
        wakes_at=wakes_at,
    )


def pin(pull: PullRequest) -> Pin | None:
    if pull.pinned_at is None:
        return None
    return Pin(by=pull.pinned_by or "", reason=pull.pinned_reason or "", at=pull.pinned_at)


def expires_at(
    pull: PullRequest, environment: Environment | None, ttl: timedelta | None
) -> datetime | None:
    """When the stay is released unless someone opens it, pushes or pins it; None: never."""
    if ttl is None or pull.pinned_at is not None:
        return None
    if environment is None or environment.status not in EXPIRABLE:
        return None
    return last_touched(environment) + ttl


def office_hours_wait(
    repository: Repository, environment: Environment | None, now: datetime
) -> str | None:
    """For a queued PR of a repository outside its office hours: when it may get a server.

    The pass assigns no server while the repository's office hours are closed, so the PR's
    place in the queue alone would not explain the wait.
    """
    schedule = repository.schedule
    if schedule is None or environment is None:
        return None
    if environment.status is not EnvironmentStatus.QUEUED or office_hours.is_open(schedule, now):
        return None
    opens = office_hours.next_change(schedule, now)
    return office_hours.format_in_zone(schedule, opens) if opens is not None else "never"


def last_release_reason(session: Session, pull: PullRequest) -> tuple[str, datetime | None] | None:
    """Why pullre ended the PR's latest finished stay (expired, reclaimed), if pullre did."""
    latest = session.scalar(
        select(Environment)
        .where(
            Environment.pull_request_id == pull.id,
            Environment.status == EnvironmentStatus.RELEASED,
        )
        .order_by(Environment.id.desc())
        .limit(1)
    )
    if latest is None or not latest.release_reason:
        return None
    return latest.release_reason, latest.released_at


def cost_json(cost: Cost, currency: str) -> dict[str, object]:
    """Hours as numbers (to the hundredth); the amount as a decimal string, exact to 1/10000."""
    return {
        "hours": float(cost.hours.quantize(_CENT, rounding=ROUND_HALF_UP)),
        "amount": str(cost.amount.quantize(_SMALL, rounding=ROUND_HALF_UP)),
        "unpriced_hours": float(cost.unpriced_hours.quantize(_CENT, rounding=ROUND_HALF_UP)),
        "currency": currency,
        "running_since": cost.running_since.isoformat() if cost.running_since else None,
    }


@dataclass(frozen=True)
class PolicyView:
    """Everything above for one PR, as its page shows it."""

    sleeping: Sleeping | None
    pin: Pin | None
    expires_at: datetime | None
    #: When a queued PR may get a server, if its repository's office hours are closed.
    waits_for_office_hours: str | None
    #: (reason, when) the latest stay ended, when pullre ended it.
    last_release: tuple[str, datetime | None] | None
    #: This stay's cost; None without an environment.
    stay_cost: Cost | None
    total_cost: Cost
    currency: str


def policy_view(
    session: Session,
    pull: PullRequest,
    environment: Environment | None,
    *,
    ttl: timedelta | None,
    currency: str,
    now: datetime,
) -> PolicyView:
    repository = pull.repository
    found = pull_costs(session, [pull.id], until=now)
    return PolicyView(
        sleeping=sleeping(session, environment, repository, now),
        pin=pin(pull),
        expires_at=expires_at(pull, environment, ttl),
        waits_for_office_hours=office_hours_wait(repository, environment, now),
        last_release=last_release_reason(session, pull),
        stay_cost=found.by_environment.get(environment.id, Cost()) if environment else None,
        total_cost=found.by_pull.get(pull.id, Cost()),
        currency=currency,
    )
