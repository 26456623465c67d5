"""The dashboard's rows and pool summary, in a fixed number of queries whatever the page size.

The dashboard is reloaded by every open browser tab every few seconds, so each read here is one
statement over indexed columns: the PR's active environment and server come from one joined
SELECT, queue places from the queue's ids in serving order (one indexed scan: a correlated count
per row cost a page of queued PRs 0.1 s with 700 waiting), and smoke results for the whole page
from one more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, case, func, select
from sqlalchemy.orm import Session

from pullre.environments.smoke_results import smoke_badges
from pullre.environments.status import queue_positions
from pullre.environments.visit_status import badge_label
from pullre.github.port import web_url
from pullre.models import (
    ACTIVE_ENVIRONMENT_STATUSES,
    Environment,
    EnvironmentStatus,
    PullRequest,
    PullRequestState,
    Repository,
    Server,
)
from pullre.trust.approval import head_waits

PAGE_SIZE = 50
#: The status filter's choices: an active environment status, or an open PR without one.
NO_ENVIRONMENT = "none"
STATUS_CHOICES = (
    *(s.value for s in EnvironmentStatus if s in ACTIVE_ENVIRONMENT_STATUSES),
    NO_ENVIRONMENT,
)
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
    #: From a fork or an outsider, and its head not approved: nothing of it runs.
    awaiting_approval: bool = False


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
    #: Held by a sleeping environment: stopped, but kept for its PR (not free).
    sleeping: int = 0

    @property
    def size(self) -> int:
        return self.free + self.busy + self.sleeping + self.starting + self.stopping


def _active_environment_join() -> ColumnElement[bool]:
    return and_(
        Environment.pull_request_id == PullRequest.id,
        Environment.status.in_(ACTIVE_ENVIRONMENT_STATUSES),
    )


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
                Repository.trust,
            ),
            where,
        )
        .outerjoin(Server, Server.id == Environment.server_id)
        .order_by(Repository.owner, Repository.name, PullRequest.number, PullRequest.id)
        .limit(page_size)
        .offset((page - 1) * page_size)
    )
    results = session.execute(query).all()
    smoke = smoke_badges(session, [row[3].id for row in results if row[3] is not None])
    places = queue_positions(session)
    web = web_url(github_api_url)
    rows = []
    for pull, owner, name, env, server_name, instance_id, url, trust in results:
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
                status=badge_label(env) if env else None,
                server=(server_name or instance_id) if instance_id else None,
                staging_url=url or None,
                queue_position=places.get(env.id) if env else None,
                deployed_at=env.deployed_at if env else None,
                smoke=smoke.get(env.id, ("none", "none"))[0] if env else "none",
                smoke_text=smoke.get(env.id, ("none", "none"))[1] if env else "none",
                awaiting_approval=head_waits(pull, trust),
            )
        )
    return DashboardPage(rows=rows, total=total, page=page, pages=pages)


def pool_summary(session: Session) -> PoolSummary:
    """Pool servers by what they are doing, and the queue's length, in two grouped queries."""
    asleep = case((Environment.status == EnvironmentStatus.SLEEPING, Environment.id))
    by_state = session.execute(
        select(
            Server.observed_state,
            func.count(Server.id),
            func.count(Environment.id),
            func.count(asleep),
        )
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
    free = busy = starting = stopping = sleeping = 0
    for state, servers, held, held_asleep in by_state:
        if state in STARTING_STATES:
            starting += servers
        elif state in STOPPING_STATES:
            stopping += servers
        else:
            sleeping += held_asleep
            busy += held - held_asleep
            free += servers - held
    queued = session.scalar(
        select(func.count(Environment.id)).where(Environment.status == EnvironmentStatus.QUEUED)
    )
    return PoolSummary(
        free=free,
        busy=busy,
        starting=starting,
        stopping=stopping,
        queued=queued or 0,
        sleeping=sleeping,
    )


@dataclass(frozen=True)
class PinnedRow:
    pull_id: int
    repository: str
    number: int
    title: str
    pinned_by: str
    reason: str
    since: datetime
    #: The pinned PR's environment status, None without one.
    status: str | None


def pinned_pulls(session: Session) -> list[PinnedRow]:
    """Open PRs pinned awake, longest-pinned first, in one query."""
    rows = session.execute(
        select(PullRequest, Repository.owner, Repository.name, Environment.status)
        .join(Repository, Repository.id == PullRequest.repository_id)
        .outerjoin(Environment, _active_environment_join())
        .where(PullRequest.state == PullRequestState.OPEN, PullRequest.pinned_at.is_not(None))
        .order_by(PullRequest.pinned_at, PullRequest.id)
    ).all()
    return [
        PinnedRow(
            pull_id=pull.id,
            repository=f"{owner}/{name}",
            number=pull.number,
            title=pull.title,
            pinned_by=pull.pinned_by or "",
            reason=pull.pinned_reason or "",
            since=pull.pinned_at,
            status=status.value if status is not None else None,
        )
        for pull, owner, name, status in rows
        if pull.pinned_at is not None
    ]


def repository_choices(session: Session) -> list[tuple[int, str]]:
    rows = session.execute(
        select(Repository.id, Repository.owner, Repository.name).order_by(
            Repository.owner, Repository.name
        )
    )
    return [(repo_id, f"{owner}/{name}") for repo_id, owner, name in rows]
