"""What goes back to the pull request: deployments, one status comment, a commit status.

Every report key (``deployment:<env>``, ``deployment-status:<env>``, ``status:pullre/deploy``,
``status:pullre/smoke``, ``comment``) is rendered from the database alone, hashed, and sent only
when the hash differs from the one stored in ``GithubReport``; an unchanged pass therefore costs no
request at all, which matters because each write spends rate limit and is paced a second apart. A
key's digest is stored only after GitHub accepted it, so a failure (recorded as ``last_error``) is
simply sent again by a later pass. No transaction is open while GitHub answers (SQLite transactions
begin IMMEDIATE and would block every other writer), and reporting never raises: it runs last in the
pass, after assignment and deploys have been committed.

A sleeping environment's deployment is marked ``inactive`` (it serves nothing; GitHub hides its
link) and gets ``success`` again on the same deployment once woken and ready, while
``pullre/deploy`` keeps the verdict the commit had: sleeping saves money, it fails no check.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from pullre.clock import Clock
from pullre.github.port import CommitState, GitHub, GitHubError, GitHubNotFound, GitHubRateLimited
from pullre.models import EnvironmentStatus, GithubReport
from pullre.reporting.comment import MARKER, render
from pullre.reporting.facts import EnvironmentFacts, PullFacts, Stored, digest
from pullre.reporting.verdicts import (
    comment_view,
    deploy_status,
    deployment_state,
    describe,
    smoke_status,
    waiting_view,
)
from pullre.scenarios.acceptance import acceptance

log = logging.getLogger(__name__)

DEPLOY_CONTEXT = "pullre/deploy"
SMOKE_CONTEXT = "pullre/smoke"
COMMENT_KEY = "comment"
COMMIT_STATUS_KEY = f"status:{DEPLOY_CONTEXT}"
SMOKE_STATUS_KEY = f"status:{SMOKE_CONTEXT}"
ACCEPTANCE_CONTEXT = "pullre/acceptance"
ACCEPTANCE_KEY = f"status:{ACCEPTANCE_CONTEXT}"
#: ``pullre/acceptance`` of a PR that was gated and has no scenario now (within 140 chars).
LIFTED = "No scenario attached now; earlier ones were detached: review before merging"


class Reporter:
    """Sends one PR's changed reports; each key is its own request(s) and its own commit."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        github: GitHub,
        *,
        public_url: str,
        clock: Clock,
        currency: str = "",
    ) -> None:
        self.sessions, self.github, self.clock = sessions, github, clock
        self.public_url = public_url.rstrip("/")
        self.currency = currency
        self.errors: list[str] = []
        #: GitHub requests made so far (sent or failed): a PR that made none did no work.
        self.requests = 0

    def page_url(self, pull: PullFacts) -> str:
        return f"{self.public_url}/pulls/{pull.id}" if self.public_url else ""

    def report(self, pull: PullFacts) -> None:
        """Raises GitHubRateLimited only, so the caller stops asking for this pass."""
        if pull.awaiting_approval is not None:
            self._awaiting_approval(pull)
            return
        for env in pull.environments:
            self._deployment(pull, env)
        newest = pull.environments[-1]
        self._commit_status(pull, newest)
        self._smoke_status(pull, newest)
        self._acceptance(pull)
        self._comment(pull, newest)

    def _awaiting_approval(self, pull: PullFacts) -> None:
        """Nothing of the head runs: earlier stays are retired, the check and comment say why."""
        for env in pull.environments:
            if deployment_state(env, pull.head_sha) == "inactive":
                self._deployment(pull, env)
        found: tuple[CommitState, str] = (
            "pending",
            f"Waiting for a maintainer's approval of {pull.head_sha[:7]}",
        )
        self._status(pull, COMMIT_STATUS_KEY, DEPLOY_CONTEXT, found, target_url=self.page_url(pull))
        self._acceptance(pull)
        self._comment(pull, None)

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
        found = deploy_status(env, pull.head_sha) if pull.head_sha else None
        if found is not None:  # a released environment says nothing new about any commit
            self._status(
                pull, COMMIT_STATUS_KEY, DEPLOY_CONTEXT, found, target_url=self.page_url(pull)
            )

    def _acceptance(self, pull: PullFacts) -> None:
        """``pullre/acceptance`` on the head: a PR never gated gets none, one gated once pending."""
        results = [result for _, result in pull.scenarios]
        state = acceptance(results)
        if not pull.head_sha:
            return
        if state is None:  # a gate lifted is shown, never silence where a status stood
            if pull.ever_gated or ACCEPTANCE_KEY in pull.reports:
                self._status(
                    pull, ACCEPTANCE_KEY, ACCEPTANCE_CONTEXT, ("pending", LIFTED),
                    target_url=self.page_url(pull) and f"{self.page_url(pull)}/scenarios",
                )  # fmt: skip
            return
        passed, short = results.count("passed"), pull.head_sha[:7]
        description = {
            "failure": f"A scenario failed on {short}",
            "success": f"All {len(results)} scenarios passed on {short}",
        }.get(state, f"{passed} of {len(results)} scenarios passed on {short}")
        target = self.page_url(pull) and f"{self.page_url(pull)}/scenarios"
        self._status(
            pull, ACCEPTANCE_KEY, ACCEPTANCE_CONTEXT, (state, description), target_url=target
        )

    def _smoke_status(self, pull: PullFacts, env: EnvironmentFacts) -> None:
        found = smoke_status(env, pull.head_sha) if pull.head_sha else None
        if found is not None:
            self._status(
                pull, SMOKE_STATUS_KEY, SMOKE_CONTEXT, found, target_url=self.page_url(pull)
            )

    def _status(
        self,
        pull: PullFacts,
        key: str,
        context: str,
        found: tuple[CommitState, str],
        *,
        target_url: str,
    ) -> None:
        """One commit status on the head, sent only when it differs from the one last sent."""
        state, description = found
        wanted = {
            "sha": pull.head_sha,
            "state": state,
            "description": description,
            "target_url": target_url,
        }

        def send(_: int | None) -> int:
            return self.github.create_commit_status(
                pull.owner, pull.name, pull.head_sha, state=state, context=context,
                description=description, target_url=target_url,
            ).id  # fmt: skip

        self._send(pull, key, wanted, send)

    def _comment(self, pull: PullFacts, env: EnvironmentFacts | None) -> None:
        """``env`` None: the PR waits for approval, and the comment says so."""
        if (
            env is not None
            and COMMENT_KEY not in pull.reports
            and env.status in {EnvironmentStatus.RELEASING, EnvironmentStatus.RELEASED}
        ):
            return  # never open a conversation just to say it is over
        view = (
            waiting_view(pull, self.page_url(pull), currency=self.currency)
            if env is None
            else comment_view(pull, env, self.page_url(pull), currency=self.currency)
        )
        body = render(view)

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
        self.requests += 1
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
