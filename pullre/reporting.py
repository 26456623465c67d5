"""What goes back to the pull request: deployments, one status comment, a commit status.

Every report key (``deployment:<env>``, ``deployment-status:<env>``, ``status:pullre/deploy``,
``comment``) is rendered from the database alone, hashed, and sent only when the hash differs
from the one stored in ``GithubReport``; an unchanged pass therefore costs no request at all,
which matters because each write spends rate limit and is paced a second apart. A key's digest
is stored only after GitHub accepted it, so a failure (recorded as ``last_error``) is simply sent
again by a later pass. No transaction is open while GitHub answers (SQLite transactions begin
IMMEDIATE and would block every other writer), and reporting never raises: it runs last in the
pass, after assignment and deploys have been committed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from pullre.clock import Clock
from pullre.github import (
    CommitState,
    DeploymentState,
    GitHub,
    GitHubError,
    GitHubNotFound,
    GitHubRateLimited,
)
from pullre.models import (
    DeployStep,
    Environment,
    EnvironmentStatus,
    GithubReport,
    PullRequest,
    PullRequestState,
    StepStatus,
)
from pullre.pr_comment import MARKER, CommentView, render
from pullre.status import queue_positions

log = logging.getLogger(__name__)

DEPLOY_CONTEXT = "pullre/deploy"
COMMENT_KEY = "comment"
COMMIT_STATUS_KEY = f"status:{DEPLOY_CONTEXT}"
#: A closed PR is still looked at for this long after its environment went away, so its final
#: "released" report goes out even if GitHub was down when it happened; after that, history.
REPORT_AFTER_RELEASE = timedelta(days=7)
#: Writes to GitHub are paced a second apart, so a backlog (a queue shift edits every waiting
#: PR's comment) could hold the reconcile lease for minutes; past this, the rest waits for the
#: next pass, which starts with the PRs reported longest ago.
REPORT_BUDGET = timedelta(seconds=30)

_COMMIT_STATE: dict[DeploymentState, CommitState] = {
    "queued": "pending",
    "in_progress": "pending",
    "success": "success",
    "failure": "failure",
}
_PHRASE = {
    EnvironmentStatus.QUEUED: "waiting for a staging server",
    EnvironmentStatus.PROVISIONING: "starting a staging server",
    EnvironmentStatus.DEPLOYING: "deploying",
    EnvironmentStatus.READY: "ready",
    EnvironmentStatus.FAILED: "deploy failed",
    EnvironmentStatus.RELEASING: "released",
    EnvironmentStatus.RELEASED: "released",
}


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


def deployment_state(env: EnvironmentFacts, head_sha: str) -> DeploymentState:
    """The head sha's state: a ready or failed environment still serving an older commit, or
    asked to redeploy, is in progress for the head, not its success or failure."""
    status = env.status
    if status in {EnvironmentStatus.RELEASING, EnvironmentStatus.RELEASED}:
        return "inactive"
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


def comment_view(pull: PullFacts, env: EnvironmentFacts, page_url: str) -> CommentView:
    state = deployment_state(env, pull.head_sha)
    serving = state not in {"queued", "inactive"}
    status = _PHRASE[env.status]
    if state == "in_progress" and env.status in {
        EnvironmentStatus.READY,
        EnvironmentStatus.FAILED,
    }:
        status = f"{status}; a newer commit is waiting to deploy"
    return CommentView(
        status=status,
        staging_url=env.staging_url if serving else None,
        queue_position=env.queue_position,
        deployed_sha=env.deployed_sha if serving else None,
        smoke=env.smoke if serving else None,
        last_error=env.last_error if state != "inactive" else None,
        page_url=page_url or None,
    )


def _candidates(session: Session, since: datetime) -> list[PullRequest]:
    """Open PRs, PRs still holding or recently giving back an environment, and PRs with a
    report that failed: everything whose report may differ from what GitHub shows."""
    recent = select(Environment.pull_request_id).where(
        or_(Environment.status != EnvironmentStatus.RELEASED, Environment.released_at >= since)
    )
    failing = select(GithubReport.pull_request_id).where(GithubReport.last_error.is_not(None))
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
                selectinload(PullRequest.repository),
                selectinload(PullRequest.environments).selectinload(Environment.server),
            )
            .order_by(PullRequest.id)
        )
    )


def _smoke(session: Session, environment_ids: Iterable[int]) -> dict[tuple[int, str], str]:
    """(environment id, sha) → "passed"/"failed" where smoke checks really ran; skipped or
    missing checks give no line at all."""
    rows = session.execute(
        select(DeployStep.environment_id, DeployStep.head_sha, DeployStep.status)
        .where(
            DeployStep.environment_id.in_(list(environment_ids)),
            DeployStep.step == "smoke",
            DeployStep.status.in_([StepStatus.OK, StepStatus.FAILED]),
        )
        .order_by(DeployStep.id)
    ).all()
    return {
        (env_id, sha): "passed" if status is StepStatus.OK else "failed"
        for env_id, sha, status in rows
    }


def load(session: Session, clock: Clock) -> list[PullFacts]:
    """Every PR that may need a report, with its environments and what was last sent."""
    pulls = [p for p in _candidates(session, clock() - REPORT_AFTER_RELEASE) if p.environments]
    ids = [p.id for p in pulls]
    positions = queue_positions(session)
    smoke = _smoke(session, [e.id for p in pulls for e in p.environments])
    stored: dict[int, dict[str, Stored]] = {}
    last: dict[int, datetime] = {}
    for row in session.scalars(select(GithubReport).where(GithubReport.pull_request_id.in_(ids))):
        stored.setdefault(row.pull_request_id, {})[row.key] = Stored(row.remote_id, row.digest)
        if row.reported_at is not None:
            last[row.pull_request_id] = max(
                row.reported_at, last.get(row.pull_request_id, row.reported_at)
            )
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
                    smoke=smoke.get((env.id, env.deployed_sha or "")),
                )
                for env in pull.environments
            ],
            reports=stored.get(pull.id, {}),
            last_reported=last.get(pull.id),
        )
        for pull in pulls
    ]
    # Never reported first, then the longest ago: a budget cut never starves the same PRs.
    return sorted(facts, key=lambda p: (p.last_reported is not None, p.last_reported or 0, p.id))


class Reporter:
    """Sends one PR's changed reports; each key is its own request(s) and its own commit."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        github: GitHub,
        *,
        public_url: str,
        clock: Clock,
    ) -> None:
        self.sessions, self.github, self.clock = sessions, github, clock
        self.public_url = public_url.rstrip("/")
        self.errors: list[str] = []

    def page_url(self, pull: PullFacts) -> str:
        return f"{self.public_url}/pulls/{pull.id}" if self.public_url else ""

    def report(self, pull: PullFacts) -> None:
        """Raises GitHubRateLimited only, so the caller stops asking for this pass."""
        for env in pull.environments:
            self._deployment(pull, env)
        newest = pull.environments[-1]
        self._commit_status(pull, newest)
        self._comment(pull, newest)

    # -- keys ---------------------------------------------------------------------------------

    def _deployment(self, pull: PullFacts, env: EnvironmentFacts) -> None:
        key = f"deployment:{env.id}"
        state = deployment_state(env, pull.head_sha)
        stored = pull.reports.get(key)
        if state != "inactive":
            wanted = {
                "ref": pull.head_sha,
                "environment": f"pr-{pull.number}",
                "description": f"Staging for #{pull.number}",
            }

            def create(previous: int | None) -> int:
                if previous is not None:
                    # Transient deployments are not retired by GitHub's auto_inactive: the
                    # superseded commit's deployment is marked gone here, then forgotten.
                    self.github.create_deployment_status(
                        pull.owner, pull.name, previous, state="inactive",
                        log_url=self.page_url(pull), description="Superseded by a newer commit",
                    )  # fmt: skip
                    self._save(pull, key, None, "")
                return self.github.create_deployment(
                    pull.owner, pull.name, ref=pull.head_sha,
                    environment=wanted["environment"], description=wanted["description"],
                ).id  # fmt: skip

            if not self._send(pull, key, wanted, create):
                return
            stored = pull.reports[key]
        if stored is None or stored.remote_id is None:
            return  # released before its deployment was ever created: nothing to retire
        deployment_id = stored.remote_id
        serving = state not in {"queued", "inactive"}
        texts = {
            "environment_url": env.staging_url if serving else "",
            "log_url": self.page_url(pull),
            "description": describe(env, pull.head_sha),
        }

        def send(_: int | None) -> int:
            return self.github.create_deployment_status(
                pull.owner, pull.name, deployment_id, state=state, **texts
            ).id

        payload = {"deployment_id": deployment_id, "state": state, **texts}
        self._send(pull, f"deployment-status:{env.id}", payload, send)

    def _commit_status(self, pull: PullFacts, env: EnvironmentFacts) -> None:
        state = deployment_state(env, pull.head_sha)
        if state == "inactive" or not pull.head_sha:
            return  # a released environment says nothing new about any commit
        wanted = {
            "sha": pull.head_sha,
            "state": _COMMIT_STATE[state],
            "description": describe(env, pull.head_sha),
            "target_url": self.page_url(pull),
        }

        def send(_: int | None) -> int:
            return self.github.create_commit_status(
                pull.owner, pull.name, pull.head_sha, state=_COMMIT_STATE[state],
                context=DEPLOY_CONTEXT, description=wanted["description"],
                target_url=wanted["target_url"],
            ).id  # fmt: skip

        self._send(pull, COMMIT_STATUS_KEY, wanted, send)

    def _comment(self, pull: PullFacts, env: EnvironmentFacts) -> None:
        if COMMENT_KEY not in pull.reports and deployment_state(env, pull.head_sha) == "inactive":
            return  # never open a conversation just to say it is over
        body = render(comment_view(pull, env, self.page_url(pull)))

        def send(known: int | None) -> int:
            if known is not None:
                try:
                    return self.github.edit_comment(pull.owner, pull.name, known, body).id
                except GitHubNotFound:
                    pass  # deleted on GitHub, or never ours: find it by its marker
            found = self._find_comment(pull, besides=known)
            if found is not None:
                return self.github.edit_comment(pull.owner, pull.name, found, body).id
            return self.github.create_comment(pull.owner, pull.name, pull.number, body).id

        self._send(pull, COMMENT_KEY, {"body": body}, send)

    def _find_comment(self, pull: PullFacts, besides: int | None) -> int | None:
        """The oldest comment carrying the marker, so a lost id never leads to a second one."""
        for comment in self.github.list_issue_comments(pull.owner, pull.name, pull.number):
            if comment.id != besides and comment.body.startswith(MARKER):
                return comment.id
        return None

    # -- bookkeeping ---------------------------------------------------------------------------

    def _send(
        self,
        pull: PullFacts,
        key: str,
        payload: dict[str, Any],
        request: Callable[[int | None], int],
    ) -> bool:
        """Send ``payload`` unless GitHub already has it; True when GitHub has it now."""
        wanted = digest(payload)
        stored = pull.reports.get(key)
        if stored is not None and stored.digest == wanted:
            return True
        try:
            remote_id = request(stored.remote_id if stored else None)
        except GitHubError as exc:
            message = f"{pull.owner}/{pull.name}#{pull.number} {key}: {exc}"
            log.warning("report not sent: %s", message)
            self.errors.append(message)
            self._fail(pull, key, str(exc))
            if isinstance(exc, GitHubRateLimited):
                raise
            return False
        self._save(pull, key, remote_id, wanted)
        return True

    def _row(self, session: Session, pull: PullFacts, key: str) -> GithubReport:
        row = session.scalar(
            select(GithubReport).where(
                GithubReport.pull_request_id == pull.id, GithubReport.key == key
            )
        )
        if row is None:
            row = GithubReport(pull_request_id=pull.id, key=key, digest="")
            session.add(row)
        return row

    def _save(self, pull: PullFacts, key: str, remote_id: int | None, sent: str) -> None:
        with self.sessions() as session:
            row = self._row(session, pull, key)
            row.remote_id, row.digest = remote_id, sent
            row.reported_at, row.last_error = self.clock(), None
            session.commit()
        pull.reports[key] = Stored(remote_id, sent)

    def _fail(self, pull: PullFacts, key: str, error: str) -> None:
        with self.sessions() as session:
            self._row(session, pull, key).last_error = error[:2000]
            session.commit()


def report_changes(
    sessions: sessionmaker[Session],
    github: GitHub,
    *,
    public_url: str,
    clock: Clock,
    renew: Callable[[], None] = lambda: None,
    budget: timedelta | None = REPORT_BUDGET,
) -> list[str]:
    """Report what changed for every PR; the errors, which are also kept on their rows.

    One PR's failure never stops the others, except a rate limit: every later request would be
    refused too, so the rest waits for the next pass (their digests are still stale). So does
    everything left once ``budget`` is spent; at least one PR is reported per call.
    """
    started = time.monotonic()
    with sessions() as session:
        pulls = load(session, clock)
        session.commit()  # end the read before GitHub is asked anything
    reporter = Reporter(sessions, github, public_url=public_url, clock=clock)
    for pull in pulls:
        try:
            reporter.report(pull)
        except GitHubRateLimited:
            break
        except Exception as exc:  # a bug here must not cost the pass its other PRs' reports
            log.exception("reporting #%s of %s/%s failed", pull.number, pull.owner, pull.name)
            reporter.errors.append(f"{pull.owner}/{pull.name}#{pull.number}: {exc!r}")
        renew()
        if budget is not None and time.monotonic() - started > budget.total_seconds():
            log.info("reporting budget spent; the rest is reported by the next pass")
            break
    return reporter.errors
