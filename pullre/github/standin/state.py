"""What the fake GitHub stores, and the driving API tests use to change it.

The state is plain dataclasses behind one lock (the HTTP server answers from several threads);
the driving methods mirror what people do on github.com (open, push, label, merge) so a test
reads like the story it checks.
"""

from __future__ import annotations

import itertools
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

DOCS = "https://docs.github.com/rest"
_ids = itertools.count(1000)


def next_id() -> int:
    return next(_ids)


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def fake_sha() -> str:
    return secrets.token_hex(20)


def user_json(login: str) -> dict[str, Any]:
    return {"login": login, "id": abs(hash(login)) % 10**8, "type": "User", "site_admin": False}


@dataclass
class Pull:
    number: int
    title: str
    author: str
    head_ref: str
    head_sha: str
    head_owner: str
    base_ref: str
    draft: bool
    labels: list[str]
    created_at: datetime
    updated_at: datetime
    body: str = ""
    state: Literal["open", "closed"] = "open"
    closed_at: datetime | None = None
    merged_at: datetime | None = None
    merge_commit_sha: str | None = None
    #: GitHub's word for the author's relation to the base repository.
    author_association: str = "COLLABORATOR"
    #: The fork was deleted: GitHub then sends ``head.repo: null``.
    fork_deleted: bool = False


@dataclass
class Repo:
    owner: str
    name: str
    id: int = field(default_factory=next_id)
    pulls: dict[int, Pull] = field(default_factory=dict)
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    deployment_statuses: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    commit_statuses: list[dict[str, Any]] = field(default_factory=list)
    next_number: int = 1

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    login: str = ""


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    #: A list body that the server cuts into pages (``per_page``/``page``, Link header).
    paginated: bool = False
    #: Bytes sent as they are instead of ``body`` as JSON (an HTML page, truncated JSON).
    raw: bytes | None = None
    content_type: str = "application/json; charset=utf-8"


class Fail(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.response = Response(
            status,
            {"message": message, "documentation_url": DOCS, "status": str(status)},
            headers or {},
        )

    @classmethod
    def replaying(cls, response: Response) -> Fail:
        """A queued fault, answered as recorded."""
        fail = cls(response.status, "queued fault")
        fail.response = Response(
            response.status,
            response.body,
            dict(response.headers),
            raw=response.raw,
            content_type=response.content_type,
        )
        return fail


def required(request: Request, key: str) -> str:
    if not isinstance(request.body, dict) or not isinstance(request.body.get(key), str):
        raise Fail(422, f'Invalid request.\n\n"{key}" wasn\'t supplied.')
    value: str = request.body[key]
    return value


class GitHubState:
    """Repositories and their PRs, comments, deployments and statuses, plus the driving API."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._repos: dict[str, Repo] = {}

    def create_repo(self, owner: str, name: str) -> Repo:
        with self._lock:
            return self._repos.setdefault(f"{owner}/{name}", Repo(owner, name))

    def repo(self, owner: str, name: str) -> Repo:
        """Read back what was reported (comments, deployments, statuses) for assertions."""
        with self._lock:
            return self._repos[f"{owner}/{name}"]

    def open_pull(
        self,
        owner: str,
        name: str,
        *,
        title: str = "A change",
        author: str = "octocat",
        head_ref: str | None = None,
        head_sha: str | None = None,
        fork_owner: str | None = None,
        base_ref: str = "main",
        draft: bool = False,
        labels: Iterable[str] = (),
        author_association: str = "COLLABORATOR",
    ) -> int:
        """Open a PR; ``fork_owner`` makes its head live in ``fork_owner/name``.

        ``author_association`` defaults to a collaborator's, whose PRs run without approval;
        give ``CONTRIBUTOR``, ``FIRST_TIME_CONTRIBUTOR`` or ``NONE`` for an outsider.
        """
        with self._lock:
            repo = self.create_repo(owner, name)
            number = repo.next_number
            repo.next_number += 1
            now = utc_now()
            repo.pulls[number] = Pull(
                number=number,
                title=title,
                author=author,
                head_ref=head_ref or f"change-{number}",
                head_sha=head_sha or fake_sha(),
                head_owner=fork_owner or owner,
                base_ref=base_ref,
                draft=draft,
                labels=list(labels),
                created_at=now,
                updated_at=now,
                author_association=author_association,
            )
            return number

    def pull(self, owner: str, name: str, number: int) -> Pull:
        with self._lock:
            return self._repos[f"{owner}/{name}"].pulls[number]

    def _change(self, owner: str, name: str, number: int, **changes: Any) -> Pull:
        with self._lock:
            pull = self.pull(owner, name, number)
            for key, value in changes.items():
                setattr(pull, key, value)
            pull.updated_at = utc_now()
            return pull

    def push(self, owner: str, name: str, number: int, sha: str | None = None) -> str:
        return self._change(owner, name, number, head_sha=sha or fake_sha()).head_sha

    def close(self, owner: str, name: str, number: int) -> None:
        self._change(owner, name, number, state="closed", closed_at=utc_now())

    def merge(self, owner: str, name: str, number: int) -> None:
        now = utc_now()
        self._change(
            owner, name, number, state="closed", closed_at=now, merged_at=now,
            merge_commit_sha=fake_sha(),
        )  # fmt: skip

    def reopen(self, owner: str, name: str, number: int) -> None:
        self._change(owner, name, number, state="open", closed_at=None)

    def add_label(self, owner: str, name: str, number: int, label: str) -> None:
        labels = self.pull(owner, name, number).labels
        self._change(owner, name, number, labels=[*labels, label])

    def remove_label(self, owner: str, name: str, number: int, label: str) -> None:
        labels = self.pull(owner, name, number).labels
        self._change(owner, name, number, labels=[lb for lb in labels if lb != label])

    def delete_fork(self, owner: str, name: str, number: int) -> None:
        """The fork's owner deleted it; the PR stays open with ``head.repo: null``."""
        self._change(owner, name, number, fork_deleted=True)

    def set_author_association(self, owner: str, name: str, number: int, value: str) -> None:
        self._change(owner, name, number, author_association=value)

    def set_draft(self, owner: str, name: str, number: int, draft: bool) -> None:
        self._change(owner, name, number, draft=draft)
