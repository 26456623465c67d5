"""Fork and outsider PRs run only once a maintainer approves their exact head sha.

A PR's code runs on a pool server beside a clone of real data, so under the default trust
(``collaborators``) a PR from a fork (or a deleted fork), or by an author GitHub does not call
OWNER, MEMBER or COLLABORATOR, waits with no server, no schema and nothing run. An approval
names one sha: a push moves the head past it and the PR waits again, so code nobody looked at
never rides on an earlier approval. The check is made twice, where a PR is queued (the pass)
and where an agent is told what to run (its assignment), so a push between two passes cannot
slip the new commit onto a server that still holds the PR.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from pullre import events
from pullre.clock import Clock
from pullre.models import Approvers, PullRequest, PullRequestState, Repository, Trust, User

#: GitHub's ``author_association`` values of people with write access to the repository.
TRUSTED_ASSOCIATIONS = frozenset({"OWNER", "MEMBER", "COLLABORATOR"})


class ApprovalRefused(Exception):
    """The approval does not apply (closed PR, nothing to approve); the message says why."""


class NotAllowed(ApprovalRefused):
    """This person may not approve in this repository."""


class StaleSha(ApprovalRefused):
    """The sha is not the PR's current head (it moved since the page was read)."""


def is_outsider(pull: PullRequest) -> bool:
    """From a fork, or by someone GitHub does not list with write access.

    A blank association is a row no sync has filled in yet (made before revision 0012, which
    has the next pass re-read every PR, or by hand); whatever GitHub sends is never blank, as
    the adapter reads a missing one as ``NONE``, an outsider.
    """
    association = pull.author_association.upper()
    return pull.from_fork or (association != "" and association not in TRUSTED_ASSOCIATIONS)


def needs_approval(pull: PullRequest, repository: Repository) -> bool:
    return repository.trust is not Trust.EVERYONE and is_outsider(pull)


def head_waits(pull: PullRequest, trust: Trust) -> bool:
    """``awaiting_approval`` given the repository's trust alone (for lists read as columns)."""
    return (
        trust is not Trust.EVERYONE
        and is_outsider(pull)
        and (not pull.head_sha or pull.approved_sha != pull.head_sha)
    )


def awaiting_approval(pull: PullRequest, repository: Repository) -> bool:
    """True while the PR's current head may not run: it needs approval and has none for it."""
    return head_waits(pull, repository.trust)


def may_approve(user: User, repository: Repository) -> bool:
    return user.active and (user.is_admin or repository.approvers is Approvers.MEMBERS)


def who_can_approve(repository: Repository) -> str:
    """pullre's own words for who may approve, for the PR comment and pages."""
    if repository.approvers is Approvers.MEMBERS:
        return "an admin or member of pullre"
    return "an admin of pullre"


def approve(session: Session, pull: PullRequest, sha: str, *, user: User, clock: Clock) -> None:
    """Let ``sha`` run for this PR; the next pass queues it. Recorded in the audit log.

    Approving the approved sha again is a no-op, so a retried request is harmless.
    """
    repository = pull.repository
    if not may_approve(user, repository):
        raise NotAllowed(
            f"only {who_can_approve(repository)} may approve PRs of {repository.full_name}"
        )
    if pull.state is not PullRequestState.OPEN:
        raise ApprovalRefused(f"#{pull.number} is {pull.state.value}")
    sha = sha.strip().lower()
    if not pull.head_sha or sha != pull.head_sha:
        now = pull.head_sha[:12] or "unknown"
        raise StaleSha(f"{sha[:40]!r} is not the head of #{pull.number} (now {now})")
    if not needs_approval(pull, repository):
        raise ApprovalRefused(f"#{pull.number} needs no approval: its author is trusted")
    if pull.approved_sha == sha:
        return  # approved already: asking twice changes nothing
    pull.approved_sha, pull.approved_by, pull.approved_at = sha, user.username, clock()
    events.record(
        session,
        "approved",
        f"#{pull.number}: {sha[:12]} approved by {user.username}",
        pull_request=pull,
        actor=user.username,
        head_sha=sha,
    )


def drop_on_push(session: Session, pull: PullRequest, new_sha: str) -> None:
    """A new head is not what was approved: forget the approval and say so in the log."""
    if pull.approved_sha is None or pull.approved_sha == new_sha:
        return
    events.record(
        session,
        "approval_dropped",
        f"#{pull.number} moved to {new_sha[:7]}: the approval of "
        f"{pull.approved_sha[:7]} by {pull.approved_by} no longer applies",
        pull_request=pull,
        approved_sha=pull.approved_sha,
        head_sha=new_sha,
    )
    pull.approved_sha = pull.approved_by = pull.approved_at = None
