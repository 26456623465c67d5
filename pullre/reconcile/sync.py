"""Bringing the controller's copy of a repository's pull requests in line with GitHub.

Both the poll (a reconcile pass) and the webhook go through ``apply_pull``, so a PR looks the
same whichever way news of it arrived.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from pullre import events
from pullre.clock import Clock
from pullre.environments.active import active_environment
from pullre.github.port import GitHub, GitHubError, GitHubNotFound, NotModified, PullRequestInfo
from pullre.models import PullRequest, PullRequestState, Repository
from pullre.policies import sleep
from pullre.trust import approval

TITLE_LENGTH = 512


@dataclass
class SyncResult:
    unchanged: bool = False
    changed: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def apply_pull(
    session: Session,
    repository: Repository,
    info: PullRequestInfo,
    clock: Clock,
    pull: PullRequest | None = None,
) -> PullRequest:
    """Record what GitHub says of one PR; a new head on a live environment asks a redeploy."""
    if pull is None:
        pull = session.scalar(
            select(PullRequest).where(
                PullRequest.repository_id == repository.id, PullRequest.number == info.number
            )
        )
    if pull is None:
        pull = PullRequest(repository_id=repository.id, number=info.number, head_sha="")
        session.add(pull)
    state = PullRequestState(info.state)
    new = pull.id is None
    pushed = bool(pull.head_sha) and pull.head_sha != info.head_sha
    reopened = pull.id is not None and pull.state is not state and state is PullRequestState.OPEN
    if pushed or reopened:
        pull.parked = False  # new work on the PR asks for an environment again
    if pushed:
        approval.drop_on_push(session, pull, info.head_sha)
    if pushed and state is PullRequestState.OPEN:
        environment = active_environment(session, pull)
        events.record(
            session,
            "pushed",
            f"#{info.number} moved to {info.head_sha[:7]}",
            pull_request=_flushed(session, pull),
            head_sha=info.head_sha,
        )
        if environment is not None:
            environment.deploy_requested_at = clock()
            environment.last_activity_at = clock()
            environment.expiry_warned_at = None
            sleep.wake(session, environment, why=f"pushed {info.head_sha[:7]}", clock=clock)
    if pull.state is not state and pull.id is not None:
        events.record(session, state.value, f"#{info.number} is {state.value}", pull_request=pull)
    pull.title = info.title[:TITLE_LENGTH]
    pull.author_login = info.author_login
    pull.head_ref = info.head_ref
    pull.head_sha = info.head_sha
    pull.head_repository = info.head_repository
    pull.from_fork = info.from_fork
    pull.author_association = info.author_association
    pull.state = state
    pull.draft = info.draft
    pull.labels = list(info.labels)
    pull.opened_at = info.created_at
    pull.updated_at = info.updated_at
    if (new or pushed) and state is PullRequestState.OPEN:
        _say_if_waiting(session, repository, _flushed(session, pull))
    return _flushed(session, pull)


def _say_if_waiting(session: Session, repository: Repository, pull: PullRequest) -> None:
    """Once per head sha: the PR's timeline says why nothing runs."""
    if approval.awaiting_approval(pull, repository):
        events.record(
            session,
            "awaiting_approval",
            f"#{pull.number} ({pull.head_sha[:7]}) waits for {approval.who_can_approve(repository)}"
            " to approve it: it comes from a fork or from outside the repository",
            pull_request=pull,
            head_sha=pull.head_sha,
        )


def _flushed(session: Session, pull: PullRequest) -> PullRequest:
    if pull.id is None:
        session.flush()
    return pull


def sync_repository(
    session: Session, github: GitHub, repository: Repository, clock: Clock
) -> SyncResult:
    """One conditional listing; PRs that left it are fetched once to learn closed vs merged.

    The new validator is stored only when every vanished PR was resolved, otherwise the next
    pass would get a 304 and never look at them again.
    """
    listing = github.list_open_pulls(repository.owner, repository.name, repository.pulls_etag)
    repository.synced_at = clock()
    if isinstance(listing, NotModified):
        return SyncResult(unchanged=True)

    result = SyncResult()
    known = {
        pull.number: pull
        for pull in session.scalars(
            select(PullRequest).where(PullRequest.repository_id == repository.id)
        )
    }
    for info in listing.pulls:
        pull = known.get(info.number)
        if pull is None or _differs(pull, info):
            apply_pull(session, repository, info, clock, pull)
            result.changed.append(info.number)

    still_open = {info.number for info in listing.pulls}
    for number, pull in known.items():
        if pull.state is not PullRequestState.OPEN or number in still_open:
            continue
        try:
            info = github.get_pull(repository.owner, repository.name, number)
        except GitHubNotFound:
            pull.state = PullRequestState.CLOSED
            events.record(session, "closed", f"#{number} is gone from GitHub", pull_request=pull)
        except GitHubError as exc:
            result.errors.append(f"#{number}: {exc}")
            events.record(
                session,
                "error",
                f"could not learn what became of #{number}: {exc}",
                pull_request=pull,
            )
            continue
        else:
            apply_pull(session, repository, info, clock, pull)
        result.changed.append(number)

    if not result.errors:
        repository.pulls_etag = listing.etag or None
    return result


def _differs(pull: PullRequest, info: PullRequestInfo) -> bool:
    return (
        pull.head_sha != info.head_sha
        or pull.state.value != info.state
        or pull.title != info.title[:TITLE_LENGTH]
        or pull.draft != info.draft
        or tuple(pull.labels) != info.labels
        or pull.head_ref != info.head_ref
        or pull.author_login != info.author_login
        or pull.head_repository != info.head_repository
        or pull.from_fork != info.from_fork
        or pull.author_association != info.author_association
        or pull.updated_at != info.updated_at
    )
