"""A person looking at a PR's environment counts as activity (it is not idle), even on a GET.

The touch is written in a short write transaction of its own, before the page starts reading, so
the page itself reads through a deferred session and never waits for SQLite's write lock behind a
reconcile pass (:mod:`pullre.web.db_session`).
"""

from __future__ import annotations

from pullre.models import Environment, PullRequest
from pullre.policies import sleep
from pullre.web.db_session import writing
from pullre.web.request_clock import clock


def touch(pull_request_id: int) -> Environment | None:
    """Mark the PR's current environment active now; None when it has none (or no such PR)."""
    with writing() as session:
        pull = session.get(PullRequest, pull_request_id)
        return sleep.touch(session, pull, clock()) if pull is not None else None
