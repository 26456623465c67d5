"""Following each repository's office hours: its environments sleep when they close.

pullre acts on the edges only. ``Repository.schedule_state`` holds the side last acted on (None
counts as open, so a schedule attached while closed acts at the next pass), and is stored only
after acting, so a pass killed half-way acts again on what is left. Between edges nothing is
undone: a person who wakes an environment outside hours, or pushes to its PR, gets it (the next
closing edge, or idle sleep, puts it back to sleep). While closed, the repository's queued PRs
keep their place but get no server (``pool.outside_office_hours``).

At opening only the environments that slept for office hours *and* were ready when they closed
are woken, in queue order: a failed or half-set-up one would only use its running hours to fail
again, and wakes when someone asks. Pinned environments never sleep for office hours.
"""

from __future__ import annotations

from zoneinfo import ZoneInfoNotFoundError

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from pullre import events
from pullre.environments.deploys import SERVING
from pullre.models import Environment, EnvironmentStatus, PullRequest, Repository, SleepReason
from pullre.policies import office_hours, sleep
from pullre.reconcile.context import PassContext


def follow(context: PassContext) -> None:
    """Act on every repository whose office hours changed side since the last pass that looked."""
    with context.sessions() as session:
        ids = session.scalars(
            select(Repository.id)
            .where(
                or_(
                    Repository.schedule_id.is_not(None),
                    # A schedule removed while closed: open up, or its sleepers sleep forever.
                    Repository.schedule_state == office_hours.CLOSED,
                )
            )
            .order_by(Repository.id)
        ).all()
    for repository_id in ids:
        with context.sessions() as session:
            repository = session.get(Repository, repository_id)
            if repository is not None:
                _follow_one(context, session, repository)
        context.renew()


def _follow_one(context: PassContext, session: Session, repository: Repository) -> None:
    schedule = repository.schedule
    try:
        now_side = (
            office_hours.side(schedule, context.clock())
            if schedule is not None
            else office_hours.OPEN
        )
    except (ValueError, ZoneInfoNotFoundError) as exc:
        context.error(
            session,
            f"{repository.full_name}: office hours not followed: {exc}",
            repository_id=repository.id,
        )
        return
    last_side = repository.schedule_state or office_hours.OPEN
    if now_side == last_side:
        if schedule is None:
            repository.schedule_state = None
            session.commit()
        return
    if now_side == office_hours.CLOSED:
        done = f"{_close(context, session, repository)} environment(s) put to sleep"
    else:
        done = f"{_open(context, session, repository)} environment(s) woken"
    repository.schedule_state = now_side if schedule is not None else None
    name = f" ({schedule.name})" if schedule is not None else " (schedule removed)"
    events.record(
        session,
        f"office_hours_{now_side}",
        f"{repository.full_name}: office hours{name} {now_side}; {done}",
        repository_id=repository.id,
    )
    session.commit()


def _environments(repository: Repository) -> Select[Environment]:
    return (
        select(Environment)
        .join(Environment.pull_request)
        .where(PullRequest.repository_id == repository.id, Environment.server_id.is_not(None))
        .order_by(Environment.queued_at, Environment.id)
    )


def _close(context: PassContext, session: Session, repository: Repository) -> int:
    """Every unpinned environment holding a server and meant to serve sleeps."""
    environments = session.scalars(
        _environments(repository).where(
            Environment.status.in_(SERVING), PullRequest.pinned_at.is_(None)
        )
    ).all()
    for environment in environments:
        sleep.put_to_sleep(
            session, environment, reason=SleepReason.OFFICE_HOURS, clock=context.clock
        )
    return len(environments)


def _open(context: PassContext, session: Session, repository: Repository) -> int:
    """Wake, in queue order, those that slept for office hours after being ready."""
    environments = session.scalars(
        _environments(repository).where(
            Environment.status == EnvironmentStatus.SLEEPING,
            Environment.sleep_reason == SleepReason.OFFICE_HOURS,
            Environment.ready_before_sleep.is_(True),
        )
    ).all()
    for environment in environments:
        sleep.wake(session, environment, why="office hours open", clock=context.clock)
    return len(environments)
