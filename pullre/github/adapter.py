"""The GitHub port implemented with PyGithub's transport: auth, pooling, pacing and retries.

PyGithub's object layer is not used on purpose: its list objects cannot send ``If-None-Match``
(PyGithub#536, #2950) and its PullRequest completes missing attributes with one extra GET each
(``merged`` is absent from list responses). All calls go through ``Requester.requestJson``
instead, in ``RestClient`` (``pullre.github.rest``): that one choke point counts requests, reads
rate-limit headers and turns every failure into a ``pullre.github.port`` exception. Retries,
counting and error mapping live in ``pullre.github.transport``.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

from github import Auth

from pullre.config import ConfigError, GithubSettings
from pullre.github.app_tokens import mint_fetch_token
from pullre.github.payloads import parse_comment, parse_pull, parse_time
from pullre.github.port import (
    Comment,
    CommitState,
    CommitStatus,
    ContentEntry,
    Deployment,
    DeploymentState,
    DeploymentStatus,
    FetchToken,
    GitHub,
    GitHubError,
    NotModified,
    OpenPulls,
    PullRequestInfo,
)
from pullre.github.rest import Page, RestClient
from pullre.github.transport import (
    DESCRIPTION_CHARS,
    CountingInstallationAuth,
    GitHubStats,
    cut,
    expected_shape,
)


class PyGithubAdapter(RestClient):
    """``GitHub`` over HTTP. ``etags`` maps ``owner/name`` to the listing validator; a caller
    may persist it and seed it back so a restarted reconciler still gets its free 304s."""

    def list_open_pulls(
        self, owner: str, name: str, etag: str | None = None
    ) -> OpenPulls | NotModified:
        """All open PRs; with a known validator, every page is asked conditionally.

        Each page carries its own ETag, and a change on page 3 (a push, a PR closed) leaves
        page 1 unchanged, so one 304 on page 1 alone would hide it. A repository with up to
        100 open PRs costs one request; an unchanged one costs one free 304 per page.
        """
        key = f"{owner}/{name}"
        path = self._repo(owner, name) + "/pulls"
        if etag is not None:
            self.etags[key] = etag
        known = self.etags.get(key, "").split()
        first: Page | None = None
        for number, page_etag in enumerate(known, start=1):
            page = self._page(path, number, page_etag)
            if page is not None:
                first = page if number == 1 else None  # later page changed: start over
                break
        else:
            if known:
                return NotModified(self.etags[key])
        pages = self._all_pages(path, first)
        with expected_shape(f"GET {path}"):
            by_number = {int(item["number"]): item for page in pages for item in page.items}
            pulls = tuple(parse_pull(item) for item in by_number.values())
        validator = " ".join(page.etag for page in pages) if all(p.etag for p in pages) else ""
        if validator:
            self.etags[key] = validator
        else:
            self.etags.pop(key, None)
        return OpenPulls(pulls, validator)

    def get_pull(self, owner: str, name: str, number: int) -> PullRequestInfo:
        path = f"{self._repo(owner, name)}/pulls/{number}"
        _, _, data = self._request("GET", path)
        with expected_shape(f"GET {path}"):
            return parse_pull(data)

    def create_deployment(
        self, owner: str, name: str, *, ref: str, environment: str, description: str = ""
    ) -> Deployment:
        # auto_merge off and no required contexts: a staging deployment of a PR head must not
        # merge the base branch into it, nor wait for the very statuses pullre reports.
        body = {
            "ref": ref,
            "environment": environment,
            "description": description,
            "auto_merge": False,
            "required_contexts": [],
            "transient_environment": True,
            "production_environment": False,
        }
        path = f"{self._repo(owner, name)}/deployments"
        _, _, data = self._request("POST", path, body=body)
        with expected_shape(f"POST {path}"):
            return Deployment(
                id=int(data["id"]),
                ref=str(data["ref"]),
                sha=str(data["sha"]),
                environment=str(data["environment"]),
                created_at=parse_time(data["created_at"]),
            )

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
    ) -> DeploymentStatus:
        body = {
            "state": state,
            "environment_url": environment_url,
            "description": cut(description, DESCRIPTION_CHARS),
        }
        if log_url:
            body["log_url"] = log_url
        path = f"{self._repo(owner, name)}/deployments/{deployment_id}/statuses"
        _, _, data = self._request("POST", path, body=body)
        with expected_shape(f"POST {path}"):
            return DeploymentStatus(
                id=int(data["id"]),
                deployment_id=deployment_id,
                state=data["state"],
                environment_url=str(data.get("environment_url") or ""),
                created_at=parse_time(data["created_at"]),
            )

    def list_issue_comments(self, owner: str, name: str, number: int) -> tuple[Comment, ...]:
        path = f"{self._repo(owner, name)}/issues/{number}/comments"
        pages = self._all_pages(path)
        with expected_shape(f"GET {path}"):
            return tuple(parse_comment(item) for page in pages for item in page.items)

    def create_comment(self, owner: str, name: str, number: int, body: str) -> Comment:
        path = f"{self._repo(owner, name)}/issues/{number}/comments"
        data = self._request("POST", path, body={"body": body})[2]
        with expected_shape(f"POST {path}"):
            return parse_comment(data)

    def edit_comment(self, owner: str, name: str, comment_id: int, body: str) -> Comment:
        path = f"{self._repo(owner, name)}/issues/comments/{comment_id}"
        data = self._request("PATCH", path, body={"body": body})[2]
        with expected_shape(f"PATCH {path}"):
            return parse_comment(data)

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
    ) -> CommitStatus:
        body = {
            "state": state,
            "context": context,
            "description": cut(description, DESCRIPTION_CHARS),
        }
        if target_url:
            body["target_url"] = target_url
        path = f"{self._repo(owner, name)}/statuses/{quote(sha, safe='')}"
        _, _, data = self._request("POST", path, body=body)
        with expected_shape(f"POST {path}"):
            return CommitStatus(
                id=int(data["id"]),
                state=data["state"],
                context=str(data["context"]),
                description=str(data.get("description") or ""),
                target_url=str(data.get("target_url") or ""),
                created_at=parse_time(data["created_at"]),
            )

    def _contents(self, owner: str, name: str, path: str, ref: str) -> Any:
        quoted = quote(path.strip("/"), safe="/")
        return self._request(
            "GET", f"{self._repo(owner, name)}/contents/{quoted}", params={"ref": ref}
        )[2]

    def list_directory(
        self, owner: str, name: str, path: str, ref: str
    ) -> tuple[ContentEntry, ...]:
        data = self._contents(owner, name, path, ref)
        if not isinstance(data, list):
            kind = data.get("type") if isinstance(data, dict) else type(data).__name__
            raise GitHubError(f"{path} at {ref[:7]} is a {kind}, not a directory")
        with expected_shape(f"GET contents {path} at {ref[:7]}"):
            return tuple(
                ContentEntry(str(e["path"]), str(e["type"]), int(e.get("size") or 0)) for e in data
            )

    def read_file(self, owner: str, name: str, path: str, ref: str) -> str:
        data = self._contents(owner, name, path, ref)
        if not isinstance(data, dict) or data.get("encoding") != "base64":
            raise GitHubError(f"{path} at {ref[:7]} is not a file GitHub sent inline")
        try:
            return base64.b64decode(str(data.get("content", ""))).decode("utf-8")
        except (ValueError, UnicodeDecodeError) as exc:
            raise GitHubError(f"{path} at {ref[:7]} is not UTF-8 text") from exc

    def mint_fetch_token(self, owner: str, name: str) -> FetchToken:
        return mint_fetch_token(self._auth, self._requester, self.stats, owner, name)


def adapter_from_settings(settings: GithubSettings, **options: Any) -> PyGithubAdapter:
    """Token auth, or GitHub App auth when ``app_id`` is set (the App wins if both are)."""
    stats = GitHubStats()
    auth: Auth.Auth
    if settings.app_id is not None and settings.installation_id is not None:
        with open(settings.app_private_key_file, encoding="utf-8") as handle:
            private_key = handle.read()
        app = Auth.AppAuth(settings.app_id, private_key)
        auth = CountingInstallationAuth(app, settings.installation_id, stats)
    elif settings.token:
        auth = Auth.Token(settings.token)
    else:
        raise ConfigError(
            [
                "[github] token, or app_id with app_private_key_file and installation_id: one "
                "of the two must be set to talk to GitHub"
            ]
        )
    options.setdefault("seconds_between_writes", settings.write_interval)
    return PyGithubAdapter(auth, base_url=settings.api_url, stats=stats, **options)


def make_github(settings: GithubSettings) -> GitHub:
    """The real adapter for entry points, authenticated as ``[github]`` says."""
    return adapter_from_settings(settings)
