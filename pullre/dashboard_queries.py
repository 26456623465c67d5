"""The dashboard's rows and pool summary, in a fixed number of queries whatever the page size.

The dashboard is reloaded by every open browser tab every few seconds, so each read here is one
statement over indexed columns: the PR's active environment, server and queue place come from
one joined SELECT (the place as a correlated count over ``ix_environments_status_queued_at``),
and smoke results for the whole page from one more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select
from sqlalchemy.orm import Session, aliased

from pullre.deploys import STEPS
from pullre.github import web_url
from pullre.models import (
    ACTIVE_ENVIRONMENT_STATUSES,
    DeployStep,
    Environment,
    EnvironmentStatus,
    PullRequest,
    PullRequestState,
    Repository,
    Server,
    StepStatus,
)
from pullre.smoke import short_label

PAGE_SIZE = 50
#: The status filter's choices: an active environment status, or an open PR without one.
NO_ENVIRONMENT = "none"
STATUS_CHOICES = (
    *(s.value for s in EnvironmentStatus if s in ACTIVE_ENVIRONMENT_STATUSES),
    NO_ENVIRONMENT,
)
SMOKE_STEP = STEPS[-1]
_Query = TypeVar("_Query", bound=Select[*tuple[Any, ...]])
#: EC2 states in which a server is on its way up or down, whoever holds it.
STARTING_STATES = frozenset({"pending"})
STOPPING_STATES = frozenset({"stopping", "shutting-down"})


@dataclass(frozen=True)
class DashboardFilter:
    repository_id: int | None = None
    status: str | None = None
    page: int = 1


@dataclass(frozen=True)
class DashboardRow:
    pull_id: int
    repository: str
    number: int
    title: str
    author: str
    head_ref: str
    head_sha: str
    github_url: str
    parked: bool
    status: str | None
    server: str | None
    staging_url: str | None
    queue_position: int | None
    deployed_at: datetime | None
    #: The badge's kind (``ok``, ``failed``, ``running``, ``skipped``, ``none``).
    smoke: str
    #: What the badge says: ``pass 5/5``, ``fail 1/5 (name…)``, else the kind.
    smoke_text: str = ""


@dataclass(frozen=True)
class DashboardPage:
    rows: list[DashboardRow]
    total: int
    page: int
    pages: int


@dataclass(frozen=True)
class PoolSummary:
    free: int
    busy: int
    starting: int
    stopping: int
    queued: int

    @property
    def size(self) -> int:
        return self.free + self.busy + self.starting + self.stopping


def _active_environment_join() -> ColumnElement[bool]:
    return and_(
        Environment.pull_request_id == PullRequest.id,
        Environment.status.in_(ACTIVE_ENVIRONMENT_STATUSES),
    )


def _queue_place() -> ColumnElement[int | None]:
    """1-based place in the queue, the assignment order of ``status.queue_positions``."""
    ahead = aliased(Environment)
    place = (
        select(func.count(ahead.id))
        .where(
            ahead.status == EnvironmentStatus.QUEUED,
            or_(
                ahead.queued_at < Environment.queued_at,
                and_(ahead.queued_at == Environment.queued_at, ahead.id <= Environment.id),
            ),
        )
        .correlate(Environment)
        .scalar_subquery()
    )
    return case((Environment.status == EnvironmentStatus.QUEUED, place), else_=None)


def _filtered(query: _Query, where: DashboardFilter) -> _Query:
    query = (
        query.select_from(PullRequest)
        .join(Repository, Repository.id == PullRequest.repository_id)
        .outerjoin(Environment, _active_environment_join())
        .where(PullRequest.state == PullRequestState.OPEN)
    )
    if where.repository_id is not None:
        query = query.where(PullRequest.repository_id == where.repository_id)
    if where.status == NO_ENVIRONMENT:
        query = query.where(Environment.id.is_(None))
    elif where.status is not None:
        query = query.where(Environment.status == EnvironmentStatus(where.status))
    return query


def dashboard_page(
    session: Session, where: DashboardFilter, *, github_api_url: str, page_size: int = PAGE_SIZE
) -> DashboardPage:
    """One page of open PRs, ordered by repository then number so pages never shuffle."""
    total = session.scalar(_filtered(select(func.count(PullRequest.id)), where)) or 0
    pages = max(1, -(-total // page_size))
    page = min(max(where.page, 1), pages)
    query = (
        _filtered(
            select(
                PullRequest,
                Repository.owner,
                Repository.name,
                Environment,
                Server.name,
                Server.instance_id,
                Server.staging_url,
                _queue_place(),
            ),
            where,
        )
        .outerjoin(Server, Server.id == Environment.server_id)
        .order_by(Repository.owner, Repository.name, PullRequest.number, PullRequest.id)
        .limit(page_size)
        .offset((page - 1) * page_size)
    )
    results = session.execute(query).all()
    smoke = _smoke_results(session, [row[3].id for row in results if row[3] is not None])
    web = web_url(github_api_url)
    rows = []
    for pull, owner, name, env, server_name, instance_id, url, place in results:
        rows.append(
            DashboardRow(
                pull_id=pull.id,
                repository=f"{owner}/{name}",
                number=pull.number,
                title=pull.title,
                author=pull.author_login,
                head_ref=pull.head_ref,
                head_sha=pull.head_sha,
                github_url=f"{web}/{owner}/{name}/pull/{pull.number}",
                parked=pull.parked,
                status=env.status.value if env else None,
                server=(server_name or instance_id) if instance_id else None,
                staging_url=url or None,
                queue_position=place,
                deployed_at=env.deployed_at if env else None,
                smoke=smoke.get(env.id, ("none", "none"))[0] if env else "none",
                smoke_text=smoke.get(env.id, ("none", "none"))[1] if env else "none",
            )
        )
    return DashboardPage(rows=rows, total=total, page=page, pages=pages)


def _smoke_results(session: Session, environment_ids: list[int]) -> dict[int, tuple[str, str]]:
    """Environment id → (badge kind, text) of its latest smoke report for its deployed sha.

    One statement for the whole page: the results ride along in ``details``.
    """
    if not environment_ids:
        return {}
    rows = session.execute(
        select(DeployStep.environment_id, DeployStep.status, DeployStep.details).where(
            DeployStep.id.in_(_latest_smoke_ids(environment_ids))
        )
    )
    found = {}
    for env_id, status, details in rows:
        text = short_label(details) if isinstance(details, dict) else status.value
        found[env_id] = (status.value, text)
    return found


def _latest_smoke_ids(
    environment_ids: list[int], statuses: tuple[StepStatus, ...] = ()
) -> Select[int]:
    """Per environment, the id of its newest smoke report for the sha it has deployed."""
    query = (
        select(func.max(DeployStep.id))
        .join(
            Environment,
            and_(
                Environment.id == DeployStep.environment_id,
                Environment.deployed_sha == DeployStep.head_sha,
            ),
        )
        .where(DeployStep.environment_id.in_(environment_ids), DeployStep.step == SMOKE_STEP)
        .group_by(DeployStep.environment_id)
    )
    if statuses:
        query = query.where(DeployStep.status.in_(statuses))
    return query


@dataclass(frozen=True)
class SmokeResults:
    """The latest finished smoke run of an environment's deployed sha, as people read it."""

    sha: str
    reported_at: datetime
    step_status: str
    results: dict[str, Any] | None

    def to_json(self) -> dict[str, Any] | None:
        """The API's ``smoke`` member; None for a run that sent no results (an older agent)."""
        r = self.results
        if r is None:
            return None
        return {
            "status": r["status"],
            "counts": r["counts"],
            "failed": r["failed"],
            "time_ms": r["time_ms"],
            "tier": r["tier"],
            "sha": self.sha,
            "reported_at": self.reported_at.isoformat(),
        }


def latest_smoke(session: Session, environment_ids: list[int]) -> dict[int, SmokeResults]:
    """Environment id → its latest ok/failed smoke report for its deployed sha, in one query.

    A run still going (or skipped) does not hide the results before it: the page keeps
    showing what is known until the new results arrive.
    """
    if not environment_ids:
        return {}
    finished = (StepStatus.OK, StepStatus.FAILED)
    steps = session.scalars(
        select(DeployStep).where(DeployStep.id.in_(_latest_smoke_ids(environment_ids, finished)))
    )
    return {
        step.environment_id: SmokeResults(
            sha=step.head_sha,
            reported_at=step.reported_at,
            step_status=step.status.value,
            results=step.details if isinstance(step.details, dict) else None,
        )
        for step in steps
    }


def pool_summary(session: Session) -> PoolSummary:
    """Pool servers by what they are doing, and the queue's length, in two grouped queries."""
    by_state = session.execute(
        select(Server.observed_state, func.count(Server.id), func.count(Environment.id))
        .outerjoin(
            Environment,
            and_(
                Environment.server_id == Server.id,
                Environment.status.in_(ACTIVE_ENVIRONMENT_STATUSES),
            ),
        )
        .where(Server.in_pool.is_(True))
        .group_by(Server.observed_state)
    ).all()
    free = busy = starting = stopping = 0
    for state, servers, held in by_state:
        if state in STARTING_STATES:
            starting += servers
        elif state in STOPPING_STATES:
            stopping += servers
        else:
            busy += held
            free += servers - held
    queued = session.scalar(
        select(func.count(Environment.id)).where(Environment.status == EnvironmentStatus.QUEUED)
    )
    return PoolSummary(
        free=free, busy=busy, starting=starting, stopping=stopping, queued=queued or 0
    )


def repository_choices(session: Session) -> list[tuple[int, str]]:
    rows = session.execute(
        select(Repository.id, Repository.owner, Repository.name).order_by(
            Repository.owner, Repository.name
        )
    )
    return [(repo_id, f"{owner}/{name}") for repo_id, owner, name in rows]
