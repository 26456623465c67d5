"""Who should have an environment, who waits, and who gives a server back.

Pure decisions over the controller DB; the EC2 side effects live in ``reconcile``. A PR waits in
FIFO order of ``queued_at`` (oldest first, pinned PRs ahead of the rest) and is never silently
skipped: a PR of a repository outside its office hours waits with its place kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    ScalarSelect,
    Select,
    SQLColumnExpression,
    and_,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.orm import Session, aliased, contains_eager, joinedload

from pullre import events
from pullre.clock import Clock
from pullre.models import (
    ACTIVE_ENVIRONMENT_STATUSES,
    Environment,
    EnvironmentStatus,
    PullRequest,
    PullRequestState,
    Repository,
    Server,
)
from pullre.policies.office_hours import CLOSED
from pullre.trust.approval import awaiting_approval

#: EC2 states in which a free server may be handed to a PR. A server still ``stopping`` (or
#: ``pending``) is left alone until a later pass sees it settle.
ASSIGNABLE_STATES = frozenset({"stopped", "running"})
_Query = TypeVar("_Query", bound=Select[*tuple[Any, ...]])


def wants_environment(pull: PullRequest, repository: Repository, include_drafts: bool) -> bool:
    return (
        pull.state is PullRequestState.OPEN
        and not pull.parked
        and repository.enabled
        and (not repository.required_label or repository.required_label in pull.labels)
        and (include_drafts or not pull.draft)
        and not awaiting_approval(pull, repository)
    )


def _why_not(pull: PullRequest, repository: Repository) -> str:
    if pull.state is not PullRequestState.OPEN:
        return f"PR is {pull.state.value}"
    if pull.parked:
        return "released by hand"
    if not repository.enabled:
        return "repository disabled"
    if repository.required_label and repository.required_label not in pull.labels:
        return f"label {repository.required_label!r} removed"
    if awaiting_approval(pull, repository):
        return f"{pull.head_sha[:7]} waits for a maintainer's approval"
    return "PR is a draft"


def plan(session: Session, include_drafts: bool, clock: Clock) -> None:
    """Queue every wanted PR without an environment; mark unwanted environments for release."""
    rows = session.execute(
        select(PullRequest, Environment)
        .join(PullRequest.repository)
        .outerjoin(
            Environment,
            (Environment.pull_request_id == PullRequest.id)
            & Environment.status.in_(ACTIVE_ENVIRONMENT_STATUSES),
        )
        .options(joinedload(PullRequest.repository))
        # PRs found in the same pass share queued_at; the older PR goes first.
        .order_by(PullRequest.opened_at, PullRequest.repository_id, PullRequest.number)
    ).all()
    for pull, environment in rows:
        wanted = wants_environment(pull, pull.repository, include_drafts)
        if wanted and environment is None:
            queued = Environment(
                pull_request_id=pull.id, status=EnvironmentStatus.QUEUED, queued_at=clock()
            )
            session.add(queued)
            events.record(
                session, "queued", f"#{pull.number} queued for a server", pull_request=pull
            )
        elif (
            not wanted
            and environment is not None
            and (environment.status is not EnvironmentStatus.RELEASING)
        ):
            environment.status = EnvironmentStatus.RELEASING
            events.record(
                session,
                "releasing",
                f"#{pull.number} releases its environment ({_why_not(pull, pull.repository)})",
                pull_request=pull,
            )


def queue_place(
    queued_at: SQLColumnExpression[datetime] | datetime,
    environment_id: SQLColumnExpression[int] | int,
    pinned: SQLColumnExpression[bool] | bool,
) -> ScalarSelect[int]:
    """1-based place in ``queued_environments`` order, as one indexed count.

    Given columns it is a correlated subquery (the dashboard's list); given values, one
    environment's place (the PR page). Either way it is the order servers are handed out in.
    """
    ahead = aliased(Environment)
    ahead_pull = aliased(PullRequest)
    ahead_pinned = ahead_pull.pinned_at.is_not(None)
    mine_pinned = literal(pinned) if isinstance(pinned, bool) else pinned
    earlier = or_(
        ahead.queued_at < queued_at,
        and_(ahead.queued_at == queued_at, ahead.id < environment_id),
    )
    return (
        select(func.count(ahead.id) + 1)
        .join(ahead_pull, ahead_pull.id == ahead.pull_request_id)
        .where(
            ahead.status == EnvironmentStatus.QUEUED,
            or_(and_(ahead_pinned, ~mine_pinned), and_(ahead_pinned == mine_pinned, earlier)),
        )
        .scalar_subquery()
    )


def _in_queue_order(query: _Query) -> _Query:
    """The serving order: pinned PRs first (someone said they must be up), then FIFO."""
    return (
        query.join(PullRequest, PullRequest.id == Environment.pull_request_id)
        .where(Environment.status == EnvironmentStatus.QUEUED)
        .order_by(PullRequest.pinned_at.is_(None), Environment.queued_at, Environment.id)
    )


def queued_environments(session: Session) -> Sequence[Environment]:
    """The queue in serving order, each with its PR and repository loaded for the pass."""
    return session.scalars(
        _in_queue_order(select(Environment)).options(
            contains_eager(Environment.pull_request).joinedload(PullRequest.repository)
        )
    ).all()


def queue_order(session: Session) -> list[int]:
    """The queued environments' ids in serving order: what pages need to number the queue,
    without loading 700 environments as objects to count them."""
    return list(session.scalars(_in_queue_order(select(Environment.id))))


def outside_office_hours(environment: Environment) -> bool:
    """A queued PR of a repository whose office hours are closed waits for them to open."""
    return environment.pull_request.repository.schedule_state == CLOSED


def free_servers(session: Session) -> list[Server]:
    """Pool servers no active environment holds, settled in a state we may act on, and not
    dirty (something of an earlier PR may be left there until an admin marks it clean)."""
    held = select(Environment.server_id).where(
        Environment.server_id.is_not(None),
        Environment.status.in_(ACTIVE_ENVIRONMENT_STATUSES),
    )
    return list(
        session.scalars(
            select(Server)
            .where(
                Server.in_pool.is_(True),
                Server.id.not_in(held),
                Server.observed_state.in_(ASSIGNABLE_STATES),
                Server.dirty_reason.is_(None),
            )
            # A running free server first: it needs no start and saves a boot.
            .order_by((Server.observed_state == "running").desc(), Server.id)
        )
    )


def servers_soon_free(session: Session) -> int:
    """Pool servers a queued PR can have now or once a release under way ends.

    Counted before reclaiming a sleeping environment's server, so a pass never takes one from
    a PR while a server is free, stopping or being given back already.
    """
    held = select(Environment.server_id).where(
        Environment.server_id.is_not(None),
        Environment.status.in_(ACTIVE_ENVIRONMENT_STATUSES),
    )
    unheld = session.scalar(
        select(func.count(Server.id)).where(
            Server.in_pool.is_(True),
            Server.id.not_in(held),
            Server.observed_state.in_(ASSIGNABLE_STATES | {"pending", "stopping"}),
            Server.dirty_reason.is_(None),
        )
    )
    releasing = session.scalar(
        select(func.count(Environment.id))
        .join(Server, Server.id == Environment.server_id)
        .where(Environment.status == EnvironmentStatus.RELEASING, Server.in_pool.is_(True))
    )
    return (unheld or 0) + (releasing or 0)


def held_servers(session: Session) -> dict[int, Environment]:
    """Server id → the active environment holding it."""
    environments = session.scalars(
        select(Environment).where(
            Environment.server_id.is_not(None),
            Environment.status.in_(ACTIVE_ENVIRONMENT_STATUSES),
        )
    )
    return {env.server_id: env for env in environments if env.server_id is not None}
