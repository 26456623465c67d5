"""The GitHub port: what pullre asks of GitHub, in pullre's own value types.

Domain code (the reconciler, reporting) takes a ``GitHub`` as an argument and never sees a
PyGithub object, so tests can hand it the adapter pointed at the local stand-in and a future
change of client library stays inside ``pullre.github.adapter``. Every failure surfaces as one
of the exception types below, promptly: a reconcile pass records "GitHub is rate limited until
T" and moves on instead of sleeping inside a client library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol
from urllib.parse import urlsplit

PullState = Literal["open", "closed", "merged"]
DeploymentState = Literal[
    "error", "failure", "inactive", "in_progress", "queued", "pending", "success"
]
CommitState = Literal["error", "failure", "pending", "success"]


@dataclass(frozen=True)
class PullRequestInfo:
    number: int
    title: str
    author_login: str
    head_ref: str
    head_sha: str
    #: ``owner/name`` of the head repository when the PR comes from a fork; None when it comes
    #: from the base repository itself or when the fork has been deleted (GitHub then sends
    #: ``head.repo: null``; ``refs/pull/N/head`` still works for fetching).
    head_repository: str | None
    state: PullState
    draft: bool
    labels: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    html_url: str = ""
    #: The head is not the base repository: a fork, or a deleted one (``head.repo: null``).
    from_fork: bool = False
    #: GitHub's ``author_association`` (OWNER, MEMBER, COLLABORATOR, CONTRIBUTOR, NONE...).
    author_association: str = ""


@dataclass(frozen=True)
class OpenPulls:
    """A complete open-PR listing and the validator to send next time."""

    pulls: tuple[PullRequestInfo, ...]
    etag: str


@dataclass(frozen=True)
class NotModified:
    """The listing is unchanged since ``etag``; it cost no rate limit."""

    etag: str


@dataclass(frozen=True)
class Comment:
    id: int
    author_login: str
    body: str
    html_url: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Deployment:
    id: int
    ref: str
    sha: str
    environment: str
    created_at: datetime


@dataclass(frozen=True)
class DeploymentStatus:
    id: int
    deployment_id: int
    state: DeploymentState
    environment_url: str
    created_at: datetime


@dataclass(frozen=True)
class CommitStatus:
    id: int
    state: CommitState
    context: str
    description: str
    target_url: str
    created_at: datetime


@dataclass(frozen=True)
class FetchToken:
    """An installation token that can only read one repository's contents, for one fetch.

    ``repr`` leaves the token out: this value passes through logs' reach on its way to an agent.
    """

    token: str = field(repr=False)
    expires_at: datetime
    repository: str


@dataclass(frozen=True)
class ContentEntry:
    """One entry of a directory listing at a commit (``type`` is ``file`` or ``dir``...)."""

    path: str
    type: str
    size: int


class GitHubError(Exception):
    """GitHub refused or failed a request; ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class GitHubAuthError(GitHubError):
    """The credentials were rejected (401); retrying will not help until config changes."""


class GitHubNotFound(GitHubError):
    """404: the repository or PR does not exist, or the credentials cannot see it."""


class GitHubRateLimited(GitHubError):
    """Primary (403/429 with ``X-RateLimit-Remaining: 0``) or secondary rate limit.

    ``reset_at`` is when a retry may succeed: from ``Retry-After`` if sent, else from
    ``X-RateLimit-Reset``, else a minute from now as GitHub's docs advise.
    """

    def __init__(self, message: str, status: int, reset_at: datetime) -> None:
        super().__init__(message, status)
        self.reset_at = reset_at


class GitHubUnavailable(GitHubError):
    """5xx after the configured retries, or no connection at all (``status`` None)."""


class RequestCounts(Protocol):
    """Running totals since the client was made; pass history subtracts two readings."""

    @property
    def requests(self) -> int: ...

    @property
    def not_modified(self) -> int: ...

    @property
    def rate_limit_remaining(self) -> int | None: ...


class GitHub(Protocol):
    """Every GitHub call pullre makes goes through one object of this type."""

    @property
    def stats(self) -> RequestCounts:
        """What this client has cost so far (read-only), for pass history and ``/metrics``."""
        ...

    def list_open_pulls(
        self, owner: str, name: str, etag: str | None = None
    ) -> OpenPulls | NotModified:
        """Every open PR (all pages), or NotModified when nothing changed since ``etag``.

        ``etag`` is the validator of an earlier ``OpenPulls``; the caller keeps it (pullre in
        its database) because every reconcile pass may be a new process. Without one, the
        adapter uses what it saw last in this process.
        """
        ...

    def get_pull(self, owner: str, name: str, number: int) -> PullRequestInfo:
        """One PR, e.g. to tell closed from merged after it left the open list."""
        ...

    def create_deployment(
        self, owner: str, name: str, *, ref: str, environment: str, description: str = ""
    ) -> Deployment: ...

    def create_deployment_status(
        self,
        owner: str,
        name: str,
        deployment_id: int,
        *,
        state: DeploymentState,
        environment_url: str = "",
        log_url: str = "",
        description: str = "",
    ) -> DeploymentStatus: ...

    def list_issue_comments(self, owner: str, name: str, number: int) -> tuple[Comment, ...]: ...

    def create_comment(self, owner: str, name: str, number: int, body: str) -> Comment: ...

    def edit_comment(self, owner: str, name: str, comment_id: int, body: str) -> Comment: ...

    def create_commit_status(
        self,
        owner: str,
        name: str,
        sha: str,
        *,
        state: CommitState,
        context: str,
        description: str = "",
        target_url: str = "",
    ) -> CommitStatus: ...

    def list_directory(
        self, owner: str, name: str, path: str, ref: str
    ) -> tuple[ContentEntry, ...]:
        """The entries of directory ``path`` at ``ref``; GitHubNotFound when it is absent."""
        ...

    def read_file(self, owner: str, name: str, path: str, ref: str) -> str:
        """The UTF-8 text of file ``path`` at ``ref``; GitHubNotFound when it is absent."""
        ...

    def mint_fetch_token(self, owner: str, name: str) -> FetchToken:
        """A new installation token for ``owner/name`` alone with ``contents: read`` (GitHub
        App auth only; ``GitHubAuthError`` with a personal token), for a box to fetch with."""
        ...


def web_url(api_url: str) -> str:
    """GitHub's web address from its API address: github.com, or the Enterprise host."""
    host = urlsplit(api_url).hostname or "github.com"
    return "https://" + ("github.com" if host == "api.github.com" else host)
