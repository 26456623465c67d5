"""What a person who follows a PR's visit link should see: the app, or what is happening.

The visit link (``/pulls/<id>/visit``) is the one staging link pullre gives people, on every
page and in the PR comment, because the raw staging URL refuses connections whenever the
environment is not serving. This module decides, for the link and for the badges beside it,
whether the app can be opened now and otherwise says in words what is going on and whether
waiting will help (the page then refreshes itself until it can send the visitor on).

An app whose fast smoke checks failed is up and answering: its environment is ``failed`` for
the reconciler, but a person may open it, and it is called ``smoke failing``, not ``failed``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from pullre.environments.deploys import STEPS
from pullre.environments.error_text import error_summary
from pullre.environments.status import latest_deploy_steps, queue_position
from pullre.models import (
    ACTIVE_ENVIRONMENT_STATUSES,
    DeployStep,
    Environment,
    EnvironmentStatus,
    PullRequest,
    StepStatus,
)
from pullre.trust.approval import awaiting_approval, who_can_approve

SMOKE_FAILING = "smoke failing"
SMOKE_FAILED_PREFIX = f"{STEPS[-1]} failed:"
#: Statuses that move towards ready on their own: the visit page keeps checking.
IN_FLIGHT = frozenset(
    {EnvironmentStatus.QUEUED, EnvironmentStatus.PROVISIONING, EnvironmentStatus.DEPLOYING}
)


@dataclass(frozen=True)
class VisitStatus:
    """Where the visit link leads now."""

    #: The word for badges: an environment status, or ``smoke failing``, or ``none``.
    label: str
    #: Where to send the visitor now; None while there is no app to open.
    app_url: str | None
    #: One sentence on what is happening, for the page that stands in for the app.
    message: str
    #: Waiting helps: the page refreshes itself.
    in_flight: bool


def smoke_failing(environment: Environment) -> bool:
    """Failed only in its smoke checks: the app passed its health check and still serves.

    Read from the error the failing step wrote (``smoke failed: ...``, see
    :func:`pullre.environments.agent_reports.record_step`), which the next deploy clears; smoke runs
    only after the health check passed, so no step query is needed and a page of rows costs
    nothing more.
    """
    return is_smoke_failure(environment.status, environment.last_error)


def is_smoke_failure(status: EnvironmentStatus, last_error: str | None) -> bool:
    """:func:`smoke_failing` for a copy of an environment's status and error (reporting's)."""
    return status is EnvironmentStatus.FAILED and (last_error or "").startswith(SMOKE_FAILED_PREFIX)


def badge_label(environment: Environment | None) -> str:
    """The status word people see for ``environment``: ``smoke failing`` or its status."""
    if environment is None:
        return "none"
    return SMOKE_FAILING if smoke_failing(environment) else environment.status.value


def visit_status(
    session: Session, pull: PullRequest, environment: Environment | None, now: datetime
) -> VisitStatus:
    """What the visit link does for ``pull`` (with ``environment``, its current stay) now."""
    number = f"#{pull.number}"
    if awaiting_approval(pull, pull.repository):
        message = (
            f"{number} waits for a maintainer's approval of {pull.head_sha[:7]}: nothing of it "
            f"runs until {who_can_approve(pull.repository)} approves that commit on its page."
        )
        return VisitStatus("awaiting approval", None, message, in_flight=False)
    if environment is None or environment.status is EnvironmentStatus.RELEASED:
        why = environment.release_reason if environment is not None else None
        message = f"{number} has no staging environment now{f' ({why})' if why else ''}."
        return VisitStatus("none", None, message, in_flight=False)
    server = environment.server
    url = server.staging_url if server is not None and server.staging_url else None
    label = badge_label(environment)
    if environment.status is EnvironmentStatus.READY or label == SMOKE_FAILING:
        if url is None:
            message = f"{number} is {label} but its server has no staging URL; ask an admin."
            return VisitStatus(label, None, message, in_flight=False)
        return VisitStatus(label, url, f"{number} is {label}.", in_flight=False)
    message = _not_serving(session, number, environment, now)
    return VisitStatus(label, None, message, in_flight=environment.status in IN_FLIGHT)


def _not_serving(
    session: Session,
    number: str,
    environment: Environment,
    now: datetime,
) -> str:
    status = environment.status
    if status is EnvironmentStatus.QUEUED:
        place = queue_position(session, environment)
        return (
            f"{number} waits {f'#{place} in the queue' if place else 'in the queue'} for a server."
        )
    if status is EnvironmentStatus.PROVISIONING:
        since = environment.start_requested_at or environment.assigned_at
        return f"{number}'s server is starting{_for(since, now)}; then its app is deployed."
    if status is EnvironmentStatus.DEPLOYING:
        return _deploying(number, latest_deploy_steps(session, environment), now)
    if status is EnvironmentStatus.FAILED:
        why = error_summary(environment.last_error) or "no reason was reported"
        return f"The last deploy of {number} failed: {why}"
    if status is EnvironmentStatus.SLEEPING:
        return f"{number} is asleep; wake it to open it."
    return f"{number} is {status.value}; there is nothing to open."


def _deploying(number: str, steps: list[DeployStep], now: datetime) -> str:
    if not steps:
        return f"{number} is being deployed; its agent has not reported a step yet."
    return f"{number} is deploying: {deploy_progress(steps, now)}."


@dataclass(frozen=True)
class DeployProgress:
    """Where a deploy is, kept apart from the clock: the dashboard caches it, and says how long
    the step has run as of each request."""

    #: None until the agent reports a step.
    step: str | None = None
    #: The step's place in ``STEPS`` (1-based).
    place: int = 0
    since: datetime | None = None

    def text(self, now: datetime) -> str:
        """``step 3 of 7 (build) for 40 s``."""
        if self.step is None:
            return "waiting for its agent's first step"
        return f"step {self.place} of {len(STEPS)} ({self.step}){_for(self.since, now)}"


def progress_of(steps: list[DeployStep]) -> DeployProgress:
    """Where a deploy is, from its latest steps."""
    if not steps:
        return DeployProgress()
    current = next((s for s in reversed(steps) if s.status is StepStatus.RUNNING), steps[-1])
    place = STEPS.index(current.step) + 1 if current.step in STEPS else len(steps)
    return DeployProgress(step=current.step, place=place, since=current.reported_at)


def deploy_progress(steps: list[DeployStep], now: datetime) -> str:
    """``step 3 of 7 (build) for 40 s``: where a deploy is, from its latest steps."""
    return progress_of(steps).text(now)


def _for(since: datetime | None, now: datetime) -> str:
    if since is None:
        return ""
    seconds = max(0, int((now - since).total_seconds()))
    if seconds < 120:
        return f" for {seconds} s"
    return f" for {seconds // 60} min"


def changing(status: VisitStatus, environment: Environment | None) -> bool:
    """Something about the PR will change by itself soon: a deploy on its way, or a redeploy or
    deep smoke run asked of the agent. A page showing it keeps itself up to date meanwhile."""
    if status.in_flight:
        return True
    return (
        environment is not None
        and environment.status in ACTIVE_ENVIRONMENT_STATUSES
        and (
            environment.smoke_requested_at is not None
            or environment.deploy_requested_at is not None
        )
    )


_ELAPSED = re.compile(r" for \d+ (?:s|min)\b")


def announcement(status: VisitStatus, environment: Environment | None) -> str:
    """What a screen reader hears when a live page changes: the status and what is happening,
    without the elapsed time, which changes at every poll and would be read out each time."""
    asked = environment is not None and environment.smoke_requested_at is not None
    smoke = " Deep smoke checks are running." if asked else ""
    return f"Status: {status.label}. {_ELAPSED.sub('', status.message)}{smoke}"
