"""Where pull requests stand: the views shared by the CLI, the API and the PR page.

The dashboard's paginated, filtered rows live in :mod:`pullre.overview.dashboard`; this module
holds the whole-list view (``status --json``) and the one-PR view of the PR page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from pullre.environments.deploys import STEPS
from pullre.models import (
    ACTIVE_ENVIRONMENT_STATUSES,
    DeployStep,
    Environment,
    EnvironmentStatus,
    Event,
    PullRequest,
    PullRequestState,
    Server,
    StepStatus,
)
from pullre.reconcile.pool import queue_order, queue_place
from pullre.trust.approval import awaiting_approval

TIMELINE_LENGTH = 20
#: Reports kept from one deploy: each step reports "running" then its outcome.


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
    #: From a fork or an outsider and its head not approved: nothing of it runs.
    awaiting_approval: bool = False

    def as_json(self) -> dict[str, Any]:
        env = self.environment
        return {
            "repository": self.repository,
            "number": self.number,
            "title": self.title,
            "author": self.author,
            "head_sha": self.head_sha,
            "state": self.state,
            "awaiting_approval": self.awaiting_approval,
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
    """Environment id → 1-based place in the queue, in the order servers are handed out."""
    return {env_id: place for place, env_id in enumerate(queue_order(session), start=1)}


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
                awaiting_approval=awaiting_approval(pull, pull.repository),
            )
        )
    return views


@dataclass(frozen=True)
class PullDetail:
    """One PR for its page: its newest environment (active, else the last one) and history."""

    pull: PullRequest
    environment: Environment | None
    queue_position: int | None
    #: The latest deploy's steps in run order, each as last reported.
    steps: list[DeployStep]
    #: Newest first, at most ``TIMELINE_LENGTH``.
    timeline: list[Event]
    more_events: bool


def pull_detail(session: Session, pull_id: int) -> PullDetail | None:
    pull = session.scalar(
        select(PullRequest)
        .options(joinedload(PullRequest.repository))
        .where(PullRequest.id == pull_id)
    )
    if pull is None:
        return None
    environment = session.scalar(
        select(Environment)
        .options(joinedload(Environment.server))
        .where(Environment.pull_request_id == pull.id)
        .order_by(Environment.id.desc())
        .limit(1)
    )
    timeline = session.scalars(
        select(Event)
        .where(Event.pull_request_id == pull.id)
        .order_by(Event.id.desc())
        .limit(TIMELINE_LENGTH + 1)
    ).all()
    return PullDetail(
        pull=pull,
        environment=environment,
        queue_position=queue_position(session, environment) if environment else None,
        steps=latest_deploy_steps(session, environment) if environment else [],
        timeline=list(timeline[:TIMELINE_LENGTH]),
        more_events=len(timeline) > TIMELINE_LENGTH,
    )


def queue_position(session: Session, environment: Environment) -> int | None:
    """The environment's place in the assignment order, counted with one indexed query."""
    if environment.status is not EnvironmentStatus.QUEUED:
        return None
    pinned = environment.pull_request.pinned_at is not None
    return session.scalar(select(queue_place(environment.queued_at, environment.id, pinned)))


def latest_deploy_reports(session: Session, environment_id: int) -> list[DeployStep]:
    """Every step report since the environment's newest deploy began, oldest first.

    A redeploy of the same sha reports every step again, so the sha alone cannot tell deploys
    apart; the first step's "running" report marks where each one began.
    """
    started = (
        select(func.max(DeployStep.id))
        .where(
            DeployStep.environment_id == environment_id,
            DeployStep.step == STEPS[0],
            DeployStep.status == StepStatus.RUNNING,
        )
        .scalar_subquery()
    )
    return list(
        session.scalars(
            select(DeployStep)
            .where(
                DeployStep.environment_id == environment_id,
                DeployStep.id >= func.coalesce(started, 0),
            )
            .order_by(DeployStep.id)
        )
    )


def latest_deploy_steps(session: Session, environment: Environment) -> list[DeployStep]:
    """The newest deploy's last report of each step, in the order a deploy runs them."""
    latest = {report.step: report for report in latest_deploy_reports(session, environment.id)}
    order = {step: place for place, step in enumerate(STEPS)}
    return sorted(latest.values(), key=lambda r: (order.get(r.step, len(STEPS)), r.id))
