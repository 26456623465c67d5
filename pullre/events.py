"""Writing to the audit log, which the dashboard and the PR timeline are read from."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from pullre.models import Event, PullRequest, Server

log = logging.getLogger(__name__)


def record(
    session: Session,
    kind: str,
    message: str,
    *,
    pull_request: PullRequest | None = None,
    server: Server | None = None,
    repository_id: int | None = None,
    **details: Any,
) -> Event:
    """Add an event to the session (committed with the decision it explains) and log it."""
    if pull_request is not None and repository_id is None:
        repository_id = pull_request.repository_id
    event = Event(
        kind=kind,
        message=message,
        pull_request_id=pull_request.id if pull_request is not None else None,
        server_id=server.id if server is not None else None,
        repository_id=repository_id,
        details=details,
    )
    session.add(event)
    log.info("%s: %s", kind, message, extra={"event_kind": kind, "details": details})
    return event
