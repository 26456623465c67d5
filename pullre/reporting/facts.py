"""What a PR's reports are made of, read from the database in one short transaction.

Kept apart from the sending (``pullre.reporting.sender``): everything here is pure or a read, so the
decision "what would GitHub be told now" can be tested and digested without any network.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, joinedload

from pullre.clock import Clock
from pullre.cost.pricing import Cost, environment_costs
from pullre.environments.status import queue_positions
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
from pullre.policies.sleep import last_touched
from pullre.scenarios.acceptance import standings_for
from pullre.scenarios.gate import ever_gated
from pullre.trust.approval import awaiting_approval, who_can_approve

#: A closed PR is still looked at for this long after its environment went away, so its final
#: "released" report goes out even if GitHub was down when it happened; after that, history.
REPORT_AFTER_RELEASE = timedelta(days=7)


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
    #: A scenario was run on it or detached from it: with none attached now it stays pending.
    ever_gated: bool = False
    parked: bool = False
    pinned_by: str | None = None
    pinned_reason: str | None = None
    #: Every stay's finished running time, and the start of a run going on (``until=None``).
    cost: Cost = field(default_factory=Cost)
    #: Who may approve the head sha while the PR waits for it (pullre's words), else None.
    awaiting_approval: str | None = None


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
    gated = ever_gated(session, [p.id for p in pulls if not standings.get(p.id)])
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
            ever_gated=pull.id in gated,
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
