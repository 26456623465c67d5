"""Pull requests as ``/api/v1`` shows them: one page of PRs, or one PR with its history.

The list is paged in SQL (a script may follow hundreds of PRs) and costs the same six queries
whatever the page holds: the count, the page, the page's active environments with their
servers, their latest smoke results, the queue order, and the running spans of the page's
stays (their cost). Filters are ``EXISTS`` subqueries on indexed columns, so a PR is never
counted twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.orm import Session

from pullre.cost.pricing import Cost, pull_cost, pull_costs
from pullre.environments.smoke_results import SmokeResults, latest_smoke
from pullre.environments.status import latest_deploy_reports, queue_position, queue_positions
from pullre.models import (
    ACTIVE_ENVIRONMENT_STATUSES,
    Environment,
    EnvironmentStatus,
    Event,
    PullRequest,
    PullRequestState,
    Repository,
    Server,
)
from pullre.policies import facts as policy_facts
from pullre.trust import approval

#: ``?status=none``: open PRs without an environment (parked, or not labelled for one).
NO_ENVIRONMENT = "none"
#: Values ``?status=`` takes: the statuses an environment is shown in, and ``none``.
STATUS_FILTERS = (
    *(s.value for s in EnvironmentStatus if s in ACTIVE_ENVIRONMENT_STATUSES),
    NO_ENVIRONMENT,
)
EVENTS_PER_PULL = 50


@dataclass(frozen=True)
class Policies:
    """What the pool's policies need to say about a PR: expiry's span, money, and the time."""

    ttl: timedelta | None
    currency: str
    now: datetime


@dataclass(frozen=True)
class PullFilter:
    repository: tuple[str, str] | None = None
    status: str | None = None


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _active(pull_id: Any) -> ColumnElement[bool]:
    return exists().where(
        Environment.pull_request_id == pull_id,
        Environment.status.in_(ACTIVE_ENVIRONMENT_STATUSES),
    )


def _conditions(wanted: PullFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [PullRequest.state == PullRequestState.OPEN]
    if wanted.repository is not None:
        owner, name = wanted.repository
        conditions += [Repository.owner == owner, Repository.name == name]
    if wanted.status == NO_ENVIRONMENT:
        conditions.append(~_active(PullRequest.id))
    elif wanted.status is not None:
        conditions.append(
            exists().where(
                Environment.pull_request_id == PullRequest.id,
                Environment.status == EnvironmentStatus(wanted.status),
            )
        )
    return conditions


def list_pulls(
    session: Session, wanted: PullFilter, *, page: int, per_page: int, policies: Policies
) -> tuple[list[dict[str, Any]], int]:
    """One page of open PRs (in the dashboard's order) and how many match in all."""
    conditions = _conditions(wanted)
    total = session.scalar(
        select(func.count())
        .select_from(PullRequest)
        .join(Repository, Repository.id == PullRequest.repository_id)
        .where(*conditions)
    )
    rows = session.execute(
        select(PullRequest, Repository)
        .join(Repository, Repository.id == PullRequest.repository_id)
        .where(*conditions)
        .order_by(PullRequest.repository_id, PullRequest.number)
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    environments = _active_environments(session, [pull.id for pull, _ in rows])
    smoke = latest_smoke(session, [env.id for env, _ in environments.values()])
    positions = (
        queue_positions(session)
        if any(env.status is EnvironmentStatus.QUEUED for env, _ in environments.values())
        else {}
    )
    costs = pull_costs(session, [pull.id for pull, _ in rows], until=policies.now)
    items = []
    for pull, repository in rows:
        environment, server = environments.get(pull.id, (None, None))
        found = smoke.get(environment.id) if environment is not None else None
        item = pull_json(pull, repository, environment, server, positions, smoke=found)
        item.update(policy_json(pull, environment, costs.by_pull.get(pull.id, Cost()), policies))
        items.append(item)
    return items, total or 0


def _active_environments(
    session: Session, pull_ids: list[int]
) -> dict[int, tuple[Environment, Server | None]]:
    if not pull_ids:
        return {}
    rows = session.execute(
        select(Environment, Server)
        .outerjoin(Server, Server.id == Environment.server_id)
        .where(
            Environment.pull_request_id.in_(pull_ids),
            Environment.status.in_(ACTIVE_ENVIRONMENT_STATUSES),
        )
        .order_by(Environment.id)
    ).all()
    return {env.pull_request_id: (env, server) for env, server in rows}


def pull_json(
    pull: PullRequest,
    repository: Repository,
    environment: Environment | None,
    server: Server | None,
    positions: dict[int, int],
    *,
    smoke: SmokeResults | None = None,
) -> dict[str, Any]:
    """``smoke``: the latest results for the deployed sha (see the README's JSON API)."""
    return {
        "id": pull.id,
        "repository": repository.full_name,
        "number": pull.number,
        "title": pull.title,
        "author": pull.author_login,
        "head_ref": pull.head_ref,
        "head_sha": pull.head_sha,
        "state": pull.state.value,
        "parked": pull.parked,
        "environment": None
        if environment is None
        else {
            "status": environment.status.value,
            "server": (server.name or server.instance_id) if server else None,
            "url": (server.staging_url or None) if server else None,
            "queue_position": positions.get(environment.id),
            "schema": environment.schema_name,
            "deployed_sha": environment.deployed_sha,
            "deployed_at": iso(environment.deployed_at),
            "last_error": environment.last_error,
        },
        "smoke": smoke.to_json() if smoke is not None else None,
        "approval": approval_json(pull, repository),
    }


def approval_json(pull: PullRequest, repository: Repository) -> dict[str, Any]:
    """Whether the PR's head waits for a maintainer (see the README's JSON API)."""
    return {
        "from_fork": pull.from_fork,
        "author_association": pull.author_association or None,
        "required": approval.needs_approval(pull, repository),
        "awaiting": approval.awaiting_approval(pull, repository),
        "approved_sha": pull.approved_sha,
        "approved_by": pull.approved_by,
        "approved_at": iso(pull.approved_at),
    }


def policy_json(
    pull: PullRequest, environment: Environment | None, cost: Cost, policies: Policies
) -> dict[str, Any]:
    """Sleep, pin, expiry and cost (all the PR's stays, up to now): see the README's JSON API."""
    asleep = environment is not None and environment.status is EnvironmentStatus.SLEEPING
    pin = policy_facts.pin(pull)
    return {
        "sleep": {
            "since": iso(environment.slept_at),
            "reason": environment.sleep_reason.value if environment.sleep_reason else None,
        }
        if asleep and environment is not None
        else None,
        "pin": None if pin is None else {"by": pin.by, "reason": pin.reason, "at": iso(pin.at)},
        "expires_at": iso(policy_facts.expires_at(pull, environment, policies.ttl)),
        "cost": policy_facts.cost_json(cost, policies.currency),
    }


def event_json(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "created_at": iso(event.created_at),
        "kind": event.kind,
        "message": event.message,
        "repository_id": event.repository_id,
        "pull_id": event.pull_request_id,
        "server_id": event.server_id,
        "details": event.details,
    }


def pull_detail(session: Session, pull_id: int, policies: Policies) -> dict[str, Any] | None:
    """The PR (any state) with its environment, its latest deploy's steps and recent events.

    The steps come from the PR's latest environment even once released, so a script can still
    read why the last deploy failed.
    """
    row = session.execute(
        select(PullRequest, Repository)
        .join(Repository, Repository.id == PullRequest.repository_id)
        .where(PullRequest.id == pull_id)
    ).one_or_none()
    if row is None:
        return None
    pull, repository = row
    environment, server = _active_environments(session, [pull.id]).get(pull.id, (None, None))
    place = queue_position(session, environment) if environment is not None else None
    positions = {environment.id: place} if environment is not None and place else {}
    smoke = latest_smoke(session, [environment.id]) if environment is not None else {}
    found = smoke.get(environment.id) if environment is not None else None
    detail = pull_json(pull, repository, environment, server, positions, smoke=found)
    cost = pull_cost(session, pull, until=policies.now)
    detail.update(policy_json(pull, environment, cost, policies))
    latest_id = (
        environment.id
        if environment is not None
        else session.scalar(
            select(func.max(Environment.id)).where(Environment.pull_request_id == pull.id)
        )
    )
    detail["deploy_steps"] = [] if latest_id is None else _latest_deploy(session, latest_id)
    recent = session.scalars(
        select(Event)
        .where(Event.pull_request_id == pull.id)
        .order_by(Event.id.desc())
        .limit(EVENTS_PER_PULL)
    )
    detail["events"] = [event_json(event) for event in recent]
    return detail


def _latest_deploy(session: Session, environment_id: int) -> list[dict[str, Any]]:
    """Every report since the environment's last deploy began (not only the last per step)."""
    steps = latest_deploy_reports(session, environment_id)
    return [
        {
            "step": step.step,
            "status": step.status.value,
            "head_sha": step.head_sha,
            "reported_at": iso(step.reported_at),
            "log_tail": step.log_tail,
        }
        for step in steps
    ]
