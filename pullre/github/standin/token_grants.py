"""What an installation token the stand-in minted may do, as the access-token request asked.

GitHub's ``POST /app/installations/{id}/access_tokens`` takes ``repositories`` (names),
``repository_ids`` and ``permissions`` to narrow a token below the installation's own reach.
The stand-in checks their shapes as GitHub does (422 otherwise), answers with the narrowed
token's description, and keeps every grant so tests can assert what was asked for and a test
git server can tell whether a presented token may read a repository.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pullre.github.standin.state import Fail, Repo, iso

#: The installation's own permissions, what a token asked for without ``permissions`` gets.
INSTALLATION_PERMISSIONS = {"pull_requests": "write", "deployments": "write", "statuses": "write"}
_LEVELS = {"read", "write"}
_NARROWING = ("repositories", "repository_ids", "permissions")


@dataclass(frozen=True)
class TokenGrant:
    token: str = field(repr=False)
    installation_id: int
    #: ``owner/name`` of each repository the token reaches; None: all of the installation's.
    repositories: tuple[str, ...] | None
    permissions: dict[str, str]
    expires_at: datetime
    #: What the request body held, as sent (``repositories``/``repository_ids``/``permissions``).
    requested: dict[str, Any]

    def can_read(self, full_name: str, now: datetime | None = None) -> bool:
        """Whether this token may fetch ``full_name``'s code at ``now``."""
        if self.expires_at <= (now or datetime.now(UTC)):
            return False
        if self.repositories is not None and full_name not in self.repositories:
            return False
        return self.permissions.get("contents") in _LEVELS


def grant(
    token: str,
    installation_id: int,
    body: Any,
    repos: Iterable[Repo],
    expires_at: datetime,
) -> TokenGrant:
    """The grant a request body asks for; ``Fail(422)`` for what GitHub refuses."""
    if not isinstance(body, dict):
        raise Fail(422, "Invalid request.\n\nFor 'links/0/schema', body is not an object.")
    known = list(repos)
    reached: list[str] | None = None
    names = body.get("repositories")
    ids = body.get("repository_ids")
    if names is not None:
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise Fail(422, "Invalid request.\n\n'repositories' must be an array of names.")
        reached = [_by(known, lambda r, n=n: r.name == n) for n in names]
    if ids is not None:
        if not isinstance(ids, list) or not all(type(i) is int for i in ids):
            raise Fail(422, "Invalid request.\n\n'repository_ids' must be an array of integers.")
        reached = (reached or []) + [_by(known, lambda r, i=i: r.id == i) for i in ids]
    permissions = body.get("permissions")
    if not permissions:  # absent or {} (PyGithub sends {}): the installation's own
        permissions = dict(INSTALLATION_PERMISSIONS)
    elif not isinstance(permissions, dict) or not all(
        isinstance(k, str) and v in _LEVELS for k, v in permissions.items()
    ):
        raise Fail(422, "Invalid request.\n\n'permissions' must map names to read or write.")
    return TokenGrant(
        token=token,
        installation_id=installation_id,
        repositories=None if reached is None else tuple(dict.fromkeys(reached)),
        permissions={"metadata": "read", **permissions},
        expires_at=expires_at,
        requested={k: v for k, v in body.items() if k in _NARROWING},
    )


def _by(repos: list[Repo], matches: Any) -> str:
    for repo in repos:
        if matches(repo):
            return f"{repo.owner}/{repo.name}"
    raise Fail(
        422,
        "There is at least one repository that does not exist or is not accessible to the "
        "parent installation.",
    )


def answer(grant: TokenGrant, repos: Iterable[Repo]) -> dict[str, Any]:
    """The 201 body, shaped like GitHub's ``installation-token``."""
    body: dict[str, Any] = {
        "token": grant.token,
        "expires_at": iso(grant.expires_at),
        "permissions": grant.permissions,
        "repository_selection": "all" if grant.repositories is None else "selected",
    }
    if grant.repositories is not None:
        body["repositories"] = [
            {"id": r.id, "name": r.name, "full_name": f"{r.owner}/{r.name}", "private": True}
            for r in repos
            if f"{r.owner}/{r.name}" in grant.repositories
        ]
    return body
