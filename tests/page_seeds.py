"""Rows for the page tests: repositories, pool servers and PRs in any environment state."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from pullre.models import (
    DeployStep,
    Environment,
    EnvironmentStatus,
    PullRequest,
    Repository,
    Server,
    StepStatus,
)

NOW = datetime(2024, 5, 6, 12, 30, tzinfo=UTC)


def add_repository(session: Session, owner: str = "acme", name: str = "shop") -> Repository:
    repo = Repository(owner=owner, name=name, base_schema=f"{name}_base")
    session.add(repo)
    session.flush()
    return repo


def add_server(session: Session, number: int, state: str | None = "running") -> Server:
    server = Server(
        instance_id=f"i-{number:017x}",
        name=f"stage-{number}",
        staging_url=f"https://stage-{number}.example.com",
        observed_state=state,
    )
    session.add(server)
    session.flush()
    return server


def add_pull(
    session: Session,
    repo: Repository,
    number: int,
    *,
    status: EnvironmentStatus | None = None,
    server: Server | None = None,
    title: str | None = None,
    queued_minutes_ago: int = 0,
    smoke: StepStatus | None = None,
    parked: bool = False,
) -> PullRequest:
    """An open PR; with ``status`` an environment too, deployed at its head when on a server."""
    sha = hashlib.sha1(f"{repo.full_name}#{number}".encode()).hexdigest()
    pull = PullRequest(
        repository_id=repo.id,
        number=number,
        title=title if title is not None else f"Change number {number}",
        author_login="alice",
        head_ref=f"feature-{number}",
        head_sha=sha,
        parked=parked,
    )
    session.add(pull)
    session.flush()
    if status is not None:
        environment = Environment(
            pull_request_id=pull.id,
            status=status,
            server_id=server.id if server else None,
            queued_at=NOW - timedelta(minutes=queued_minutes_ago),
            schema_name=f"pr_{repo.id}_{number}",
            deployed_sha=sha if server else None,
            deployed_at=NOW if server else None,
        )
        session.add(environment)
        session.flush()
        if smoke is not None:
            session.add(
                DeployStep(
                    environment_id=environment.id,
                    head_sha=sha,
                    step="smoke",
                    status=smoke,
                    log_tail="smoke log",
                    reported_at=NOW,
                )
            )
            session.flush()
    return pull
