"""What a PR's reports are made of, read from the database in one short transaction.

Kept apart from the sending (``pullre.reporting.sender``): everything here is pure or a read, so the
decision "what would GitHub be told now" can be tested and digested without any network.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, joinedload

from pullre.clock import Clock
from pullre.cost.pricing import Cost, environment_costs
from pullre.environments.error_text import plain_error
from pullre.environments.status import queue_positions
from pullre.environments.visit_status import is_smoke_failure
from pullre.github.port import CommitState, DeploymentState
from pullre.models import (
    DeployStep,
    Environment,
    EnvironmentStatus,
    Event,
    GithubReport,
    PullRequest,
    PullRequestState,
    SleepReason,
    StepStatus,
)
from pullre.policies.savings import EXPIRABLE
from pullre.policies.sleep import last_touched
from pullre.reporting.comment import CommentView
from pullre.scenarios.acceptance import standings_for
from pullre.smoke.results import counts_text, failing_names, summary
from pullre.trust.approval import awaiting_approval, who_can_approve

#: A closed PR is still looked at for this long after its environment went away, so its final
#: "released" report goes out even if GitHub was down when it happened; after that, history.
REPORT_AFTER_RELEASE = timedelta(days=7)
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


def digest(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class EnvironmentFacts:
    id: int
    status: EnvironmentStatus
    staging_url: str
    deployed_sha: str | None
    redeploy_requested: bool
    last_error: str | None
    queue_position: int | None
    smoke: str | None
    #: The latest smoke report of the deployed sha, whatever its status (running included).
    smoke_step: StepStatus | None = None
    #: The results of the deployed sha's latest finished smoke run, when it sent any.
    smoke_results: dict[str, Any] | None = None
    slept_at: datetime | None = None
    sleep_reason: SleepReason | None = None
    #: Who put it to sleep by hand (from the "sleeping" event), when someone did.
    slept_by: str | None = None
    ready_before_sleep: bool = False
    #: pullre warned that this stay expires, at ``expires_at`` (None when the TTL is unknown).
    expiry_warned: bool = False
    expires_at: datetime | None = None
    #: Why pullre ended this stay (expired, reclaimed); None when a person or a close did.
    release_reason: str | None = None


@dataclass
class Stored:
    remote_id: int | None
    digest: str


@dataclass
class PullFacts:
    """A PR as read in one short transaction; reporting then works from this copy only."""

    id: int
    owner: str
    name: str
    number: int
    head_sha: str
    environments: list[EnvironmentFacts]
    reports: dict[str, Stored] = field(default_factory=dict)
    last_reported: datetime | None = None
    #: (title, result on the head sha) of each attached acceptance scenario.
    scenarios: tuple[tuple[str, str], ...] = ()
    parked: bool = False
    pinned_by: str | None = None
    pinned_reason: str | None = None
    #: Every stay's finished running time, and the start of a run going on (``until=None``).
    cost: Cost = field(default_factory=Cost)
    #: Who may approve the head sha while the PR waits for it (pullre's words), else None.
    awaiting_approval: str | None = None


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


_COMMIT_STATE: dict[DeploymentState, CommitState] = {
    "queued": "pending",
    "in_progress": "pending",
    "success": "success",
    "failure": "failure",
}


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


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _smoke_line(env: EnvironmentFacts) -> str | None:
    results = env.smoke_results
    if results is None:
        return env.smoke
    word = {"pass": "passed", "fail": "failed"}.get(results["status"], "errored")
    return f"{word} ({counts_text(results)}, {results['tier']} tier)"


def _candidates(session: Session, since: datetime) -> list[PullRequest]:
    """Open PRs, PRs still holding or recently giving back an environment, and PRs with a
    report that failed: everything whose report may differ from what GitHub shows."""
    recent = select(Environment.pull_request_id).where(
        or_(Environment.status != EnvironmentStatus.RELEASED, Environment.released_at >= since)
    )
    failing = select(GithubReport.pull_request_id).where(GithubReport.last_error.is_not(None))
    # Joined, not selectin-loaded: selectin loading asks again for every 500 PRs.
    return list(
        session.scalars(
            select(PullRequest)
            .where(
                or_(
                    PullRequest.state == PullRequestState.OPEN,
                    PullRequest.id.in_(recent),
                    PullRequest.id.in_(failing),
                )
            )
            .options(
                joinedload(PullRequest.repository),
                joinedload(PullRequest.environments).joinedload(Environment.server),
            )
            .order_by(PullRequest.id)
        ).unique()
    )


@dataclass
class _SmokeSeen:
    latest: StepStatus | None
    finished: str | None = None
    results: dict[str, Any] | None = None


def _smoke(session: Session, environment_ids: Iterable[int]) -> dict[tuple[int, str], _SmokeSeen]:
    """(environment id, sha) → its latest smoke report, and its latest finished one
    ("passed"/"failed", with results when the agent sent them). Skipped checks are no data."""
    rows = session.execute(
        select(
            DeployStep.environment_id, DeployStep.head_sha, DeployStep.status, DeployStep.details
        )
        .where(DeployStep.environment_id.in_(list(environment_ids)), DeployStep.step == "smoke")
        .order_by(DeployStep.id)
    ).all()
    seen: dict[tuple[int, str], _SmokeSeen] = {}
    for env_id, sha, status, details in rows:
        entry = seen.setdefault((env_id, sha), _SmokeSeen(status))
        entry.latest = status
        if status in {StepStatus.OK, StepStatus.FAILED}:
            entry.finished = "passed" if status is StepStatus.OK else "failed"
            entry.results = details if isinstance(details, dict) else None
    return seen


def _slept_by(session: Session, pulls: Iterable[PullRequest]) -> dict[int, str]:
    """PR id → who put its sleeping environment to sleep, from the latest "sleeping" event."""
    ids = [
        p.id
        for p in pulls
        for e in p.environments
        if e.status is EnvironmentStatus.SLEEPING and e.sleep_reason is SleepReason.BY_HAND
    ]
    if not ids:
        return {}
    found: dict[int, str] = {}
    for pull_id, details in session.execute(
        select(Event.pull_request_id, Event.details)
        .where(Event.kind == "sleeping", Event.pull_request_id.in_(ids))
        .order_by(Event.id)
    ):
        actor = details.get("actor") if isinstance(details, dict) else None
        if pull_id is not None:
            if isinstance(actor, str) and actor:
                found[pull_id] = actor
            else:
                found.pop(pull_id, None)
    return found


def _waits_for_approval(pull: PullRequest) -> bool:
    """Open and otherwise wanted (enabled, labelled), with a head nobody approved yet: only
    then is an approval what stands between the PR and a server, worth a comment."""
    repository = pull.repository
    return (
        pull.state is PullRequestState.OPEN
        and not pull.parked
        and repository.enabled
        and (not repository.required_label or repository.required_label in pull.labels)
        and awaiting_approval(pull, repository)
    )


def _expires_at(env: Environment, ttl: timedelta | None) -> datetime | None:
    if env.expiry_warned_at is None or ttl is None:
        return None
    return last_touched(env) + ttl


def load(session: Session, clock: Clock, *, ttl: timedelta | None = None) -> list[PullFacts]:
    """Every PR that may need a report, with its environments and what was last sent.

    ``ttl`` is the pool's expiry (``[pool] ttl_hours``), for the time a warned stay expires.
    A fixed number of queries whatever the number of PRs: each kind of fact is read for all
    of them at once (``tests/test_reporting_queries.py`` counts them).
    """
    candidates = _candidates(session, clock() - REPORT_AFTER_RELEASE)
    waiting = {p.id for p in candidates if _waits_for_approval(p)}
    pulls = [p for p in candidates if p.environments or p.id in waiting]
    ids = [p.id for p in pulls]
    positions = queue_positions(session)
    smoke = _smoke(session, [e.id for p in pulls for e in p.environments])
    slept_by = _slept_by(session, pulls)
    costs = environment_costs(session, [e.id for p in pulls for e in p.environments], until=None)
    standings = standings_for(session, pulls)
    stored: dict[int, dict[str, Stored]] = {}
    last: dict[int, datetime] = {}
    # Columns, not rows: a pass reads every key of every candidate, and mapped rows cost more.
    for pull_id, key, remote_id, sent, reported_at in session.execute(
        select(
            GithubReport.pull_request_id,
            GithubReport.key,
            GithubReport.remote_id,
            GithubReport.digest,
            GithubReport.reported_at,
        ).where(GithubReport.pull_request_id.in_(ids))
    ):
        stored.setdefault(pull_id, {})[key] = Stored(remote_id, sent)
        if reported_at is not None:
            last[pull_id] = max(reported_at, last.get(pull_id, reported_at))
    facts = [
        PullFacts(
            id=pull.id,
            owner=pull.repository.owner,
            name=pull.repository.name,
            number=pull.number,
            head_sha=pull.head_sha,
            environments=[
                EnvironmentFacts(
                    id=env.id,
                    status=env.status,
                    staging_url=env.server.staging_url if env.server else "",
                    deployed_sha=env.deployed_sha,
                    redeploy_requested=env.deploy_requested_at is not None,
                    last_error=env.last_error,
                    queue_position=positions.get(env.id),
                    smoke=_seen(smoke, env).finished,
                    smoke_step=_seen(smoke, env).latest,
                    smoke_results=_seen(smoke, env).results,
                    slept_at=env.slept_at,
                    sleep_reason=env.sleep_reason,
                    slept_by=slept_by.get(pull.id),
                    ready_before_sleep=env.ready_before_sleep,
                    expiry_warned=env.expiry_warned_at is not None,
                    expires_at=_expires_at(env, ttl),
                    release_reason=env.release_reason,
                )
                for env in pull.environments
            ],
            reports=stored.get(pull.id, {}),
            last_reported=last.get(pull.id),
            scenarios=tuple((s.scenario.title, s.result) for s in standings.get(pull.id, ())),
            parked=pull.parked,
            pinned_by=pull.pinned_by if pull.pinned_at is not None else None,
            pinned_reason=pull.pinned_reason,
            cost=sum((costs.get(e.id, Cost()) for e in pull.environments), Cost()),
            awaiting_approval=who_can_approve(pull.repository) if pull.id in waiting else None,
        )
        for pull in pulls
    ]
    # Never reported first, then the longest ago: a budget cut never starves the same PRs.
    return sorted(facts, key=lambda p: (p.last_reported is not None, p.last_reported or 0, p.id))


_NOTHING_SEEN = _SmokeSeen(latest=None)


def _seen(smoke: dict[tuple[int, str], _SmokeSeen], env: Environment) -> _SmokeSeen:
    return smoke.get((env.id, env.deployed_sha or ""), _NOTHING_SEEN)
