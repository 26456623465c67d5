"""Finding a PR's current stay on the pool, which sync, actions, sleep and scenarios all ask."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from pullre.models import ACTIVE_ENVIRONMENT_STATUSES, Environment, PullRequest


def active_environment(session: Session, pull: PullRequest) -> Environment | None:
    """The environment that holds or waits for a server for this PR (at most one exists)."""
    return session.scalar(
        select(Environment).where(
            Environment.pull_request_id == pull.id,
            Environment.status.in_(ACTIVE_ENVIRONMENT_STATUSES),
        )
    )
