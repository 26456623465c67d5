"""Policies that keep the EC2 bill small: idle sleep, expiry, and reclaiming sleepers' servers.

They run in every pass after ``pool.plan`` and before the EC2 side, and only change the
database (the pool operations then stop, start and free what they decided), so a pass killed
half-way is finished by the next: each decision is its own short transaction and each rule reads
only what the previous pass left. A pinned PR's environment is exempt from all of them.

Office hours are not a policy of the pool but of each repository; they are followed here too
(``repository_hours``), first, so the other rules see who sleeps for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from pullre import events
from pullre.config import PoolSettings
from pullre.models import (
    ACTIVE_ENVIRONMENT_STATUSES,
    Environment,
    EnvironmentStatus,
    PullRequest,
    SleepReason,
)
from pullre.policies import repository_hours, sleep
from pullre.reconcile import pool
from pullre.reconcile.context import PassContext

#: Statuses in which a stay holds a server and may expire; queued ones hold nothing yet and
#: releasing ones are on their way out already.
EXPIRABLE = ACTIVE_ENVIRONMENT_STATUSES - {EnvironmentStatus.QUEUED, EnvironmentStatus.RELEASING}


@dataclass(frozen=True)
class PoolPolicies:
    """How long things may sit unused; None turns a rule off."""

    #: A ready or failed environment untouched this long is put to sleep.
    idle_stop: timedelta | None = None
    #: A queued PR that waited longer than this (with no server free) takes a sleeper's server.
    reclaim_sleeping_after: timedelta | None = None
    #: An environment untouched this long is released and its PR parked.
    ttl: timedelta | None = None
    #: How long before ``ttl`` the PR is warned; None or zero: warned one pass before.
    expiry_warning: timedelta | None = None

    @classmethod
    def from_settings(cls, settings: PoolSettings) -> PoolPolicies:
        """``[pool]``: 0 turns idle sleep and expiry off; a reclaim after 0 minutes is at once."""
        return cls(
            idle_stop=timedelta(minutes=settings.idle_stop_minutes)
            if settings.idle_stop_minutes
            else None,
            reclaim_sleeping_after=timedelta(minutes=settings.reclaim_sleeping_after_minutes),
            ttl=timedelta(hours=settings.ttl_hours) if settings.ttl_hours else None,
            expiry_warning=timedelta(hours=settings.expiry_warning_hours),
        )


def apply(context: PassContext, policies: PoolPolicies | None) -> None:
    """Every rule once, in an order where each sees what the earlier ones decided.

    Expiry goes before reclaim so a server an expiry frees counts as free, and idle sleep
    before reclaim so this pass's sleepers can be reclaimed by the PRs already waiting.
    """
    repository_hours.follow(context)
    if policies is None:
        return
    if policies.ttl is not None:
        expire(context, policies.ttl, policies.expiry_warning or timedelta(0))
        context.renew()
    if policies.idle_stop is not None:
        sleep_idle(context, policies.idle_stop)
        context.renew()
    if policies.reclaim_sleeping_after is not None:
        reclaim(context, policies.reclaim_sleeping_after)
        context.renew()


def duration(span: timedelta) -> str:
    """How long, in the words an event and a PR comment use: "45 min", "3 h"."""
    minutes = max(0, int(span.total_seconds() // 60))
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h"


def _candidates(session: Session, statuses: frozenset[EnvironmentStatus]) -> list[Environment]:
    """Environments of unpinned PRs in ``statuses`` that hold a server, oldest stay first."""
    return list(
        session.scalars(
            select(Environment)
            .join(Environment.pull_request)
            .where(
                Environment.status.in_(statuses),
                Environment.server_id.is_not(None),
                PullRequest.pinned_at.is_(None),
            )
            .order_by(Environment.queued_at, Environment.id)
            .options(joinedload(Environment.pull_request))
        )
    )


def sleep_idle(context: PassContext, idle_stop: timedelta) -> None:
    """Put to sleep what nobody used for ``idle_stop``; the pool operations stop its instance."""
    now = context.clock()
    with context.sessions() as session:
        for environment in _candidates(session, sleep.SLEEPABLE):
            if now - sleep.last_touched(environment) < idle_stop:
                continue
            sleep.put_to_sleep(session, environment, reason=SleepReason.IDLE, clock=context.clock)
            session.commit()


def expire(context: PassContext, ttl: timedelta, warning: timedelta) -> None:
    """Warn a stay untouched for ``ttl - warning``; release one untouched for ``ttl`` if warned.

    The warning must come from an earlier pass than the release, so the PR comment (reported
    at the end of every pass) has said so before the environment goes. A warning older than
    the last activity (a deploy, which does not clear it) is stale and dropped: the count
    starts over.
    """
    now = context.clock()
    warn_after = max(ttl - warning, timedelta(0))
    with context.sessions() as session:
        for environment in _candidates(session, EXPIRABLE):
            touched = sleep.last_touched(environment)
            warned = environment.expiry_warned_at
            if warned is not None and warned < touched:
                environment.expiry_warned_at = warned = None
            untouched = now - touched
            if untouched >= ttl and warned is not None and warned < now:
                _release_expired(session, environment, untouched)
            elif untouched >= warn_after and warned is None:
                environment.expiry_warned_at = now
                pull = environment.pull_request
                events.record(
                    session,
                    "expiry_warning",
                    f"#{pull.number} expires at {touched + ttl:%Y-%m-%d %H:%M} UTC unless used",
                    pull_request=pull,
                    server=environment.server,
                    expires_at=(touched + ttl).isoformat(),
                )
            session.commit()


def _release_expired(session: Session, environment: Environment, untouched: timedelta) -> None:
    pull = environment.pull_request
    environment.status = EnvironmentStatus.RELEASING
    environment.release_reason = f"expired: untouched for {duration(untouched)}"
    pull.parked = True  # not queued straight back; a push, a reopen or un-parking brings it
    events.record(
        session,
        "expired",
        f"#{pull.number} releases its environment ({environment.release_reason})",
        pull_request=pull,
        server=environment.server,
    )


def reclaim(context: PassContext, after: timedelta) -> None:
    """Give a sleeper's server to each queued PR that waited longer than ``after`` for one.

    Only PRs with no server in sight count: free servers and those being released already go
    to the head of the queue first. The longest-sleeping unpinned environment goes first, and
    never more than one per such PR. Its PR is not parked: it queues again, at the back, once
    the release is done.
    """
    now = context.clock()
    with context.sessions() as session:
        waited = [
            environment
            for environment in pool.queued_environments(session)
            if not pool.outside_office_hours(environment) and now - environment.queued_at > after
        ]
        unserved = waited[pool.servers_soon_free(session) :]
        if not unserved:
            return
        sleepers = session.scalars(
            select(Environment)
            .join(Environment.pull_request)
            .where(
                Environment.status == EnvironmentStatus.SLEEPING,
                Environment.server_id.is_not(None),
                PullRequest.pinned_at.is_(None),
            )
            .order_by(Environment.slept_at, Environment.id)
            .limit(len(unserved))
        ).all()
        for waiting, sleeper in zip(unserved, sleepers, strict=False):
            _release_for(session, sleeper, waiting, now)
            session.commit()


def _release_for(
    session: Session, sleeper: Environment, waiting: Environment, now: datetime
) -> None:
    pull, other = sleeper.pull_request, waiting.pull_request
    other_name = f"{other.repository.full_name}#{other.number}"
    sleeper.status = EnvironmentStatus.RELEASING
    sleeper.release_reason = (
        f"reclaimed for {other_name}, which waited {duration(now - waiting.queued_at)}"
    )
    events.record(
        session,
        "reclaimed",
        f"#{pull.number} gives its sleeping server to {other_name} ({sleeper.release_reason})",
        pull_request=pull,
        server=sleeper.server,
        for_pull_request_id=other.id,
        for_pull_request=other_name,
    )
