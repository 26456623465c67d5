"""Where every pull request stands: the view shared by the dashboard, the CLI and the API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from pullre.models import (
    ACTIVE_ENVIRONMENT_STATUSES,
    Environment,
    EnvironmentStatus,
    PullRequest,
    PullRequestState,
    Server,
)


@dataclass(frozen=True)
class EnvironmentView:
    status: str
    server: str | None
    url: str | None
    queue_position: int | None
    schema: str | None


@dataclass(frozen=True)
class PullRequestView:
    id: int
    repository: str
    number: int
    title: str
    author: str
    head_ref: str
    head_sha: str
    state: str
    environment: EnvironmentView | None

    def as_json(self) -> dict[str, Any]:
        env = self.environment
        return {
            "repository": self.repository,
            "number": self.number,
            "title": self.title,
            "author": self.author,
            "head_sha": self.head_sha,
            "state": self.state,
            "environment": None
            if env is None
            else {
                "status": env.status,
                "server": env.server,
                "url": env.url,
                "queue_position": env.queue_position,
                "schema": env.schema,
            },
        }


def queue_positions(session: Session) -> dict[int, int]:
    """Environment id → 1-based place in the queue, oldest waiting first (the assignment order)."""
    queued = session.scalars(
        select(Environment.id)
        .where(Environment.status == EnvironmentStatus.QUEUED)
        .order_by(Environment.queued_at, Environment.id)
    )
    return {env_id: place for place, env_id in enumerate(queued, start=1)}


def pull_request_views(session: Session, *, include_closed: bool = False) -> list[PullRequestView]:
    """Every (open) PR with its current environment, in two queries whatever the count."""
    query = (
        select(PullRequest)
        .options(joinedload(PullRequest.repository))
        .order_by(PullRequest.repository_id, PullRequest.number)
    )
    if not include_closed:
        query = query.where(PullRequest.state == PullRequestState.OPEN)
    pulls = session.scalars(query).all()

    active = session.execute(
        select(Environment, Server)
        .outerjoin(Server, Environment.server_id == Server.id)
        .where(Environment.status.in_(ACTIVE_ENVIRONMENT_STATUSES))
    ).all()
    by_pull = {env.pull_request_id: (env, server) for env, server in active}
    positions = queue_positions(session)

    views = []
    for pull in pulls:
        env_view = None
        if pull.id in by_pull:
            env, server = by_pull[pull.id]
            env_view = EnvironmentView(
                status=env.status.value,
                server=server.name or server.instance_id if server else None,
                url=server.staging_url or None if server else None,
                queue_position=positions.get(env.id),
                schema=env.schema_name,
            )
        views.append(
            PullRequestView(
                id=pull.id,
                repository=pull.repository.full_name,
                number=pull.number,
                title=pull.title,
                author=pull.author_login,
                head_ref=pull.head_ref,
                head_sha=pull.head_sha,
                state=pull.state.value,
                environment=env_view,
            )
        )
    return views
