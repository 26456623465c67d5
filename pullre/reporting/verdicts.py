"""What each report to GitHub says, worded from a PR's facts (:mod:`pullre.reporting.facts`):
the deployment's state and description, the commit statuses and the PR comment's view."""

from __future__ import annotations

from datetime import UTC, datetime

from pullre.environments.error_text import plain_error
from pullre.environments.visit_status import is_smoke_failure
from pullre.github.port import CommitState, DeploymentState
from pullre.models import EnvironmentStatus, SleepReason, StepStatus
from pullre.policies.savings import EXPIRABLE
from pullre.reporting.comment import CommentView
from pullre.reporting.facts import EnvironmentFacts, PullFacts
from pullre.smoke.results import counts_text, failing_names, summary

_COMMIT_STATE: dict[DeploymentState, CommitState] = {
    "queued": "pending",
    "in_progress": "pending",
    "success": "success",
    "failure": "failure",
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PHRASE = {
    EnvironmentStatus.QUEUED: "waiting for a staging server",
    EnvironmentStatus.PROVISIONING: "starting a staging server",
    EnvironmentStatus.DEPLOYING: "deploying",
    EnvironmentStatus.READY: "ready",
    EnvironmentStatus.FAILED: "deploy failed",
    EnvironmentStatus.SLEEPING: "sleeping",
    EnvironmentStatus.RELEASING: "released",
    EnvironmentStatus.RELEASED: "released",
}


_SLEEP_WHY = {
    SleepReason.IDLE: "idle",
    SleepReason.OFFICE_HOURS: "outside office hours",
    SleepReason.BY_HAND: "put to sleep",
}


_RELEASED = frozenset({EnvironmentStatus.RELEASING, EnvironmentStatus.RELEASED})


#: A new stay still getting going: the comment says why pullre ended the one before it.
_GETTING_GOING = frozenset(
    {EnvironmentStatus.QUEUED, EnvironmentStatus.PROVISIONING, EnvironmentStatus.DEPLOYING}
)


def deployment_state(env: EnvironmentFacts, head_sha: str) -> DeploymentState:
    """The head sha's state: a ready or failed environment still serving an older commit, or
    asked to redeploy, is in progress for the head, not its success or failure."""
    status = env.status
    if status in _RELEASED or status is EnvironmentStatus.SLEEPING:
        return "inactive"  # a sleeping one comes back to success once it is ready again
    if status is EnvironmentStatus.QUEUED:
        return "queued"
    if status is EnvironmentStatus.FAILED and not env.redeploy_requested:
        return "failure"
    if (
        status is EnvironmentStatus.READY
        and env.deployed_sha == head_sha
        and not env.redeploy_requested
    ):
        return "success"
    return "in_progress"


def describe(env: EnvironmentFacts, head_sha: str) -> str:
    """A short fixed wording (GitHub shows 140 characters) that changes only with the state."""
    state, short = deployment_state(env, head_sha), head_sha[:7]
    if state == "in_progress" and env.status in {
        EnvironmentStatus.READY,
        EnvironmentStatus.FAILED,
    }:
        return f"Waiting to deploy {short}"
    if env.status is EnvironmentStatus.SLEEPING:
        return "Asleep to save cost, data kept; wake it from pullre"
    if state == "inactive" and env.release_reason:
        return f"Released by pullre: {env.release_reason}"
    return {
        "queued": "Waiting for a staging server",
        "success": f"Deployed {short}",
        "failure": f"Deploy of {short} failed",
        "inactive": "Staging environment released",
    }.get(state) or (
        f"Deploying {short}"
        if env.status is EnvironmentStatus.DEPLOYING
        else "Starting a staging server"
    )


def deploy_status(env: EnvironmentFacts, head_sha: str) -> tuple[CommitState, str] | None:
    """``pullre/deploy`` for the head sha; None once released (it says nothing new then).

    A sleeping environment keeps the verdict it had when it went to sleep: the commit did
    deploy (or fail), and a required check must not turn red because the box saves money.
    """
    short = head_sha[:7]
    if env.status is EnvironmentStatus.SLEEPING:
        asleep = "; asleep, data kept"
        if not env.ready_before_sleep:
            return "failure", f"Deploy of {short} failed{asleep}"
        if env.deployed_sha == head_sha:
            return "success", f"Deployed {short}{asleep}"
        return "pending", f"Waiting to deploy {short}{asleep}"
    state = deployment_state(env, head_sha)
    if state == "inactive":
        return None
    return _COMMIT_STATE[state], describe(env, head_sha)


def smoke_status(env: EnvironmentFacts, head_sha: str) -> tuple[CommitState, str] | None:
    """``pullre/smoke`` for the head sha: pending until its checks report, then their verdict.

    None while the PR waits for a server or is released: nothing is known about the commit.
    """
    state, short = deployment_state(env, head_sha), head_sha[:7]
    if state in {"queued", "inactive"}:
        return None
    settled = env.status in {EnvironmentStatus.READY, EnvironmentStatus.FAILED}
    verdict: tuple[CommitState, str] | None = None
    if settled and env.deployed_sha == head_sha and not env.redeploy_requested:
        verdict = _smoke_verdict(env, short)
    if verdict is None and state == "failure":
        verdict = ("error", f"Smoke checks not run: the deploy of {short} failed")
    return verdict or ("pending", f"Waiting for the deploy of {short}")


def _smoke_verdict(env: EnvironmentFacts, short: str) -> tuple[CommitState, str] | None:
    """What the deployed head's smoke reports say, or None when they say nothing yet."""
    results = env.smoke_results
    if env.smoke_step is StepStatus.RUNNING:
        return "pending", f"Running smoke checks on {short}"
    if results is not None:
        return ("success" if results["status"] == "pass" else "failure"), summary(results)
    if env.smoke is not None:
        return ("success" if env.smoke == "passed" else "failure"), f"Smoke checks {env.smoke}"
    if env.smoke_step is StepStatus.SKIPPED:
        return "success", f"No smoke checks for {short}"
    return None


def comment_view(
    pull: PullFacts, env: EnvironmentFacts, page_url: str, *, currency: str = ""
) -> CommentView:
    state = deployment_state(env, pull.head_sha)
    serving = state not in {"queued", "inactive"}
    released = env.status in _RELEASED
    sleeping = env.status is EnvironmentStatus.SLEEPING
    status = _PHRASE[env.status]
    smoke_failing = is_smoke_failure(env.status, env.last_error)
    if smoke_failing:
        status = "smoke failing — the app runs, but some of its smoke checks fail"
    if state == "in_progress" and env.status in {
        EnvironmentStatus.READY,
        EnvironmentStatus.FAILED,
    }:
        status = f"{status}; a newer commit is waiting to deploy"
    before = pull.environments[: pull.environments.index(env)] if env in pull.environments else []
    earlier = before[-1].release_reason if before and env.status in _GETTING_GOING else None
    sleep_why = _SLEEP_WHY[env.sleep_reason] if env.sleep_reason is not None else "asleep"
    if env.sleep_reason is SleepReason.BY_HAND and not env.slept_by:
        sleep_why = "put to sleep by hand"
    return CommentView(
        status=status,
        staging_url=env.staging_url if serving else None,
        queue_position=env.queue_position,
        deployed_sha=env.deployed_sha if serving else None,
        smoke=_smoke_line(env) if serving else None,
        smoke_failed=tuple(failing_names(env.smoke_results or {})) if serving else (),
        # One error block: a smoke failure is told by the smoke line, not again as an error.
        last_error=plain_error(env.last_error) if not released and not smoke_failing else None,
        page_url=page_url or None,
        scenarios=pull.scenarios,
        sleeping_since=(env.slept_at or _EPOCH) if sleeping else None,
        sleep_why=sleep_why,
        slept_by=env.slept_by if sleeping and env.sleep_reason is SleepReason.BY_HAND else None,
        visit_url=f"{page_url}/visit" if page_url else None,
        expiry_warned=env.expiry_warned and env.status in EXPIRABLE and not pull.pinned_by,
        expires_at=env.expires_at,
        released_because=env.release_reason if released else None,
        parked=pull.parked,
        earlier_release=earlier,
        pinned_by=pull.pinned_by if not released else None,
        pinned_reason=pull.pinned_reason,
        cost=pull.cost,
        currency=currency,
    )


def waiting_view(pull: PullFacts, page_url: str, *, currency: str = "") -> CommentView:
    """The comment of a PR whose head waits for a maintainer's approval."""
    return CommentView(
        status="waiting for a maintainer's approval",
        page_url=page_url or None,
        scenarios=pull.scenarios,
        cost=pull.cost,
        currency=currency,
        approval_by=pull.awaiting_approval,
        head_sha=pull.head_sha,
    )


def _smoke_line(env: EnvironmentFacts) -> str | None:
    results = env.smoke_results
    if results is None:
        return env.smoke
    word = {"pass": "passed", "fail": "failed"}.get(results["status"], "errored")
    return f"{word} ({counts_text(results)}, {results['tier']} tier)"
