"""A small stateful GitHub REST server on 127.0.0.1, for tests and the sandbox.

It speaks the documented shapes of the endpoints pullre uses (pulls, issue comments,
deployments, commit statuses, App installation tokens) and GitHub's protocol habits that the
reconciler depends on: Link-header pagination, weak ETags with ``If-None-Match`` answered by a
bodiless 304 that does not spend rate limit, token checking, and rate-limit headers. Faults
(5xx, primary and secondary rate limits) can be queued so callers see them exactly as GitHub
sends them. Everything is in memory; the driving API mutates the same state the HTTP side
serves, so a test can "push" to a PR and watch the reconciler notice.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import jwt

DOCS = "https://docs.github.com/rest"
_ids = itertools.count(1000)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _fake_sha() -> str:
    return secrets.token_hex(20)


def _user(login: str) -> dict[str, Any]:
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


@dataclass
class Repo:
    owner: str
    name: str
    id: int = field(default_factory=lambda: next(_ids))
    pulls: dict[int, Pull] = field(default_factory=dict)
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    deployment_statuses: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    commit_statuses: list[dict[str, Any]] = field(default_factory=list)
    next_number: int = 1

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass(frozen=True)
class LoggedRequest:
    """One request as the stand-in answered it, for "exactly one request, answered 304" tests."""

    method: str
    path: str
    query: str
    status: int
    conditional: bool


@dataclass(frozen=True)
class _App:
    app_id: int
    public_key_pem: str
    installation_id: int
    token_lifetime: timedelta


@dataclass
class _Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    login: str = ""


@dataclass
class _Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class _Fail(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.response = _Response(
            status,
            {"message": message, "documentation_url": DOCS, "status": str(status)},
            headers or {},
        )


Route = Callable[[_Request, re.Match[str]], _Response]


class GitHubStandIn:
    """The fake GitHub: ``with GitHubStandIn(tokens={"t": "bot"}) as gh: ... gh.url ...``."""

    def __init__(
        self,
        *,
        tokens: dict[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        rate_limit: int = 5000,
    ) -> None:
        self._host, self._port = host, port
        self._lock = threading.RLock()
        self._tokens: dict[str, tuple[str, datetime | None]] = {
            token: (login, None) for token, login in (tokens or {}).items()
        }
        self._apps: dict[int, _App] = {}
        self._repos: dict[str, Repo] = {}
        self._faults: list[_Response] = []
        self.rate_limit = rate_limit
        self.rate_remaining = rate_limit
        self.rate_reset = _now() + timedelta(hours=1)
        self.requests: list[LoggedRequest] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._routes: list[tuple[str, re.Pattern[str], Route]] = [
            (m, re.compile(p + "$"), r)
            for m, p, r in [
                ("POST", r"/app/installations/(?P<id>\d+)/access_tokens", self._access_token),
                ("GET", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/pulls", self._list_pulls),
                ("GET", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/pulls/(?P<n>\d+)", self._get_pull),
                (
                    "GET",
                    r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/issues/(?P<n>\d+)/comments",
                    self._comments,
                ),
                (
                    "POST",
                    r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/issues/(?P<n>\d+)/comments",
                    self._comment,
                ),
                (
                    "PATCH",
                    r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/issues/comments/(?P<id>\d+)",
                    self._edit,
                ),
                ("GET", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/deployments", self._deployments),
                ("POST", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/deployments", self._deploy),
                (
                    "GET",
                    r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/deployments/(?P<id>\d+)/statuses",
                    self._deployment_statuses,
                ),
                (
                    "POST",
                    r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/deployments/(?P<id>\d+)/statuses",
                    self._deployment_status,
                ),
                ("POST", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/statuses/(?P<sha>\w+)", self._status),
                (
                    "GET",
                    r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/commits/(?P<sha>[^/]+)/statuses",
                    self._statuses,
                ),
            ]
        ]

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> GitHubStandIn:
        standin = self

        class Handler(_Handler):
            def answer(self, request: _Request) -> _Response:
                return standin._answer(request)

        self._server = ThreadingHTTPServer((self._host, self._port), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() waits up to one poll
            name="github-standin",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> GitHubStandIn:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The API root, as ``[github] api_url``."""
        assert self._server is not None, "start() the stand-in first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- driving API -------------------------------------------------------------------------

    def add_token(self, token: str, login: str = "pullre-bot") -> None:
        with self._lock:
            self._tokens[token] = (login, None)

    def register_app(
        self,
        app_id: int,
        public_key_pem: str,
        installation_id: int,
        *,
        token_lifetime: timedelta = timedelta(hours=1),
    ) -> None:
        with self._lock:
            self._apps[installation_id] = _App(
                app_id, public_key_pem, installation_id, token_lifetime
            )

    def set_token_lifetime(self, installation_id: int, lifetime: timedelta) -> None:
        with self._lock:
            app = self._apps[installation_id]
            self._apps[installation_id] = _App(
                app.app_id, app.public_key_pem, app.installation_id, lifetime
            )

    def create_repo(self, owner: str, name: str) -> Repo:
        with self._lock:
            return self._repos.setdefault(f"{owner}/{name}", Repo(owner, name))

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
    ) -> int:
        """Open a PR; ``fork_owner`` makes its head live in ``fork_owner/name``."""
        with self._lock:
            repo = self.create_repo(owner, name)
            number = repo.next_number
            repo.next_number += 1
            now = _now()
            repo.pulls[number] = Pull(
                number=number,
                title=title,
                author=author,
                head_ref=head_ref or f"change-{number}",
                head_sha=head_sha or _fake_sha(),
                head_owner=fork_owner or owner,
                base_ref=base_ref,
                draft=draft,
                labels=list(labels),
                created_at=now,
                updated_at=now,
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
            pull.updated_at = _now()
            return pull

    def push(self, owner: str, name: str, number: int, sha: str | None = None) -> str:
        return self._change(owner, name, number, head_sha=sha or _fake_sha()).head_sha

    def close(self, owner: str, name: str, number: int) -> None:
        self._change(owner, name, number, state="closed", closed_at=_now())

    def merge(self, owner: str, name: str, number: int) -> None:
        now = _now()
        self._change(
            owner, name, number, state="closed", closed_at=now, merged_at=now,
            merge_commit_sha=_fake_sha(),
        )  # fmt: skip

    def reopen(self, owner: str, name: str, number: int) -> None:
        self._change(owner, name, number, state="open", closed_at=None)

    def add_label(self, owner: str, name: str, number: int, label: str) -> None:
        labels = self.pull(owner, name, number).labels
        self._change(owner, name, number, labels=[*labels, label])

    def remove_label(self, owner: str, name: str, number: int, label: str) -> None:
        labels = self.pull(owner, name, number).labels
        self._change(owner, name, number, labels=[lb for lb in labels if lb != label])

    def set_draft(self, owner: str, name: str, number: int, draft: bool) -> None:
        self._change(owner, name, number, draft=draft)

    def fail_next(self, count: int = 1, status: int = 500) -> None:
        """The next ``count`` requests, whatever they are, answer ``status``."""
        with self._lock:
            self._faults += [
                _Fail(status, HTTPStatus(status).phrase).response for _ in range(count)
            ]

    def rate_limit_next(
        self, count: int = 1, *, kind: Literal["primary", "secondary"] = "primary"
    ) -> None:
        """Primary: 403 with ``X-RateLimit-Remaining: 0``; secondary: 429 with Retry-After."""
        with self._lock:
            for _ in range(count):
                if kind == "primary":
                    response = _Fail(
                        403,
                        "API rate limit exceeded for user ID 1. If you reach out to GitHub "
                        "Support for help, please include the request ID.",
                    ).response
                    response.headers["X-RateLimit-Remaining"] = "0"
                else:
                    response = _Fail(
                        429,
                        "You have exceeded a secondary rate limit. Please wait a few minutes "
                        "before you try again.",
                        {"Retry-After": "60"},
                    ).response
                self._faults.append(response)

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def repo(self, owner: str, name: str) -> Repo:
        """Read back what was reported (comments, deployments, statuses) for assertions."""
        with self._lock:
            return self._repos[f"{owner}/{name}"]

    # -- HTTP side -----------------------------------------------------------------------------

    def _rate_headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(self.rate_remaining),
            "X-RateLimit-Reset": str(int(self.rate_reset.timestamp())),
            "X-RateLimit-Used": str(self.rate_limit - self.rate_remaining),
            "X-RateLimit-Resource": "core",
        }

    def _answer(self, request: _Request) -> _Response:
        conditional = "if-none-match" in request.headers
        with self._lock:
            try:
                response = self._dispatch(request)
            except _Fail as failure:
                response = failure.response
            headers = self._rate_headers()
            headers.update(response.headers)
            response.headers = headers
            query = "&".join(f"{k}={v}" for k, v in sorted(request.query.items()))
            self.requests.append(
                LoggedRequest(request.method, request.path, query, response.status, conditional)
            )
            return response

    def _dispatch(self, request: _Request) -> _Response:
        if self._faults:
            raise _FailWith(self._faults.pop(0))
        for method, pattern, route in self._routes:
            match = pattern.match(request.path)
            if match and method == request.method:
                break
        else:
            raise _Fail(404, "Not Found")
        if not request.path.startswith("/app/"):
            request.login = self._authenticate(request)
            if self.rate_remaining <= 0:
                raise _Fail(403, "API rate limit exceeded for user ID 1.")
        response = route(request, match)
        etag = request.headers.get("if-none-match")
        if request.method == "GET" and response.status == 200:
            digest = hashlib.sha256(json.dumps(response.body, sort_keys=True).encode()).hexdigest()
            response.headers["ETag"] = f'W/"{digest}"'
            if etag is not None and response.headers["ETag"] in re.split(r"\s*,\s*", etag):
                # GitHub: a 304 to a conditional request does not count against the rate limit.
                return _Response(304, None, {"ETag": response.headers["ETag"]})
        self.rate_remaining -= 1
        return response

    def _authenticate(self, request: _Request) -> str:
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() not in {"token", "bearer"} or credential not in self._tokens:
            raise _Fail(401, "Bad credentials")
        login, expires_at = self._tokens[credential]
        if expires_at is not None and expires_at <= datetime.now(UTC):
            raise _Fail(401, "Bad credentials")
        return login

    def _access_token(self, request: _Request, match: re.Match[str]) -> _Response:
        app = self._apps.get(int(match["id"]))
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        if app is None:
            raise _Fail(404, "Not Found")
        if scheme.lower() != "bearer":
            raise _Fail(401, "A JSON web token could not be decoded")
        try:
            claims = jwt.decode(
                credential,
                app.public_key_pem,
                algorithms=["RS256"],
                options={"require": ["iat", "exp", "iss"]},
            )
        except jwt.PyJWTError as exc:
            raise _Fail(401, f"A JSON web token could not be decoded ({exc})") from None
        if str(claims["iss"]) != str(app.app_id):
            raise _Fail(401, "'Issuer' claim ('iss') must be an Integer")
        token = "ghs_" + secrets.token_urlsafe(27)
        expires_at = _now() + app.token_lifetime
        self._tokens[token] = ("pullre[bot]", expires_at)
        body = {
            "token": token,
            "expires_at": _iso(expires_at),
            "permissions": {"pull_requests": "write", "deployments": "write", "statuses": "write"},
            "repository_selection": "all",
        }
        return _Response(201, body)

    def _repo(self, match: re.Match[str]) -> Repo:
        repo = self._repos.get(f"{match['o']}/{match['r']}")
        if repo is None:
            raise _Fail(404, "Not Found")
        return repo

    def _page(self, request: _Request, items: list[Any]) -> _Response:
        try:
            per_page = min(max(int(request.query.get("per_page", "30")), 1), 100)
            page = max(int(request.query.get("page", "1")), 1)
        except ValueError:
            raise _Fail(422, "Validation Failed") from None
        last = max((len(items) + per_page - 1) // per_page, 1)
        links: list[str] = []

        def link(number: int, rel: str) -> None:
            query = dict(request.query, per_page=str(per_page), page=str(number))
            encoded = "&".join(f"{k}={v}" for k, v in query.items())
            links.append(f'<{self.url}{request.path}?{encoded}>; rel="{rel}"')

        if page > 1:
            link(page - 1, "prev")
            link(1, "first")
        if page < last:
            link(page + 1, "next")
            link(last, "last")
        headers = {"Link": ", ".join(links)} if links else {}
        return _Response(200, items[(page - 1) * per_page : page * per_page], headers)

    def _list_pulls(self, request: _Request, match: re.Match[str]) -> _Response:
        repo = self._repo(match)
        state = request.query.get("state", "open")
        sort = request.query.get("sort", "created")
        default_direction = "desc" if sort == "created" else "asc"
        descending = request.query.get("direction", default_direction) == "desc"
        pulls = [p for p in repo.pulls.values() if state in {"all", p.state}]
        key = (lambda p: p.updated_at) if sort == "updated" else (lambda p: p.number)
        pulls.sort(key=key, reverse=descending)
        return self._page(request, [self._pull_json(repo, p) for p in pulls])

    def _get_pull(self, request: _Request, match: re.Match[str]) -> _Response:
        repo = self._repo(match)
        pull = repo.pulls.get(int(match["n"]))
        if pull is None:
            raise _Fail(404, "Not Found")
        body = self._pull_json(repo, pull)
        body.update(
            merged=pull.merged_at is not None,
            mergeable=None if pull.state == "closed" else True,
            merged_by=_user("octocat") if pull.merged_at else None,
            comments=len(repo.comments.get(pull.number, [])),
            commits=1,
        )
        return _Response(200, body)

    def _pull_json(self, repo: Repo, pull: Pull) -> dict[str, Any]:
        api = f"{self.url}/repos/{repo.full_name}"
        html = f"https://github.com/{repo.full_name}"
        head_repo = self._repo_json(Repo(pull.head_owner, repo.name, id=repo.id + 1))
        if pull.head_owner == repo.owner:
            head_repo = self._repo_json(repo)
        else:
            head_repo["fork"] = True
        return {
            "url": f"{api}/pulls/{pull.number}",
            "id": repo.id * 100000 + pull.number,
            "html_url": f"{html}/pull/{pull.number}",
            "issue_url": f"{api}/issues/{pull.number}",
            "comments_url": f"{api}/issues/{pull.number}/comments",
            "statuses_url": f"{api}/statuses/{pull.head_sha}",
            "number": pull.number,
            "state": pull.state,
            "locked": False,
            "title": pull.title,
            "user": _user(pull.author),
            "body": pull.body,
            "labels": [
                {"id": abs(hash(label)) % 10**9, "name": label, "color": "ededed", "default": False}
                for label in pull.labels
            ],
            "draft": pull.draft,
            "created_at": _iso(pull.created_at),
            "updated_at": _iso(pull.updated_at),
            "closed_at": _iso(pull.closed_at),
            "merged_at": _iso(pull.merged_at),
            "merge_commit_sha": pull.merge_commit_sha,
            "head": {
                "label": f"{pull.head_owner}:{pull.head_ref}",
                "ref": pull.head_ref,
                "sha": pull.head_sha,
                "user": _user(pull.head_owner),
                "repo": head_repo,
            },
            "base": {
                "label": f"{repo.owner}:{pull.base_ref}",
                "ref": pull.base_ref,
                "sha": "0" * 40,
                "user": _user(repo.owner),
                "repo": self._repo_json(repo),
            },
            "author_association": "CONTRIBUTOR",
        }

    def _repo_json(self, repo: Repo) -> dict[str, Any]:
        return {
            "id": repo.id,
            "name": repo.name,
            "full_name": repo.full_name,
            "owner": _user(repo.owner),
            "private": False,
            "fork": False,
            "html_url": f"https://github.com/{repo.full_name}",
            "url": f"{self.url}/repos/{repo.full_name}",
        }

    def _issue_number(self, repo: Repo, match: re.Match[str]) -> int:
        number = int(match["n"])
        if number not in repo.pulls:
            raise _Fail(404, "Not Found")
        return number

    def _comments(self, request: _Request, match: re.Match[str]) -> _Response:
        repo = self._repo(match)
        return self._page(request, repo.comments.get(self._issue_number(repo, match), []))

    def _comment(self, request: _Request, match: re.Match[str]) -> _Response:
        repo = self._repo(match)
        number = self._issue_number(repo, match)
        body = _required(request, "body")
        comment_id = next(_ids)
        now = _iso(_now())
        comment = {
            "id": comment_id,
            "url": f"{self.url}/repos/{repo.full_name}/issues/comments/{comment_id}",
            "html_url": f"https://github.com/{repo.full_name}/pull/{number}#issuecomment-{comment_id}",
            "issue_url": f"{self.url}/repos/{repo.full_name}/issues/{number}",
            "body": body,
            "user": _user(request.login),
            "created_at": now,
            "updated_at": now,
            "author_association": "NONE",
        }
        repo.comments.setdefault(number, []).append(comment)
        return _Response(201, comment)

    def _edit(self, request: _Request, match: re.Match[str]) -> _Response:
        repo = self._repo(match)
        body = _required(request, "body")
        for comment in itertools.chain.from_iterable(repo.comments.values()):
            if comment["id"] == int(match["id"]):
                comment.update(body=body, updated_at=_iso(_now()))
                return _Response(200, comment)
        raise _Fail(404, "Not Found")

    def _resolve(self, repo: Repo, ref: str) -> str:
        if re.fullmatch(r"[0-9a-f]{40}", ref):
            return ref
        for pull in repo.pulls.values():
            if ref in {pull.head_ref, f"refs/pull/{pull.number}/head"}:
                return pull.head_sha
        raise _Fail(422, f"No ref found for: {ref}")

    def _deploy(self, request: _Request, match: re.Match[str]) -> _Response:
        repo = self._repo(match)
        ref = _required(request, "ref")
        data = request.body
        deployment_id = next(_ids)
        now = _iso(_now())
        url = f"{self.url}/repos/{repo.full_name}/deployments/{deployment_id}"
        environment = data.get("environment", "production")
        deployment = {
            "url": url,
            "id": deployment_id,
            "sha": self._resolve(repo, ref),
            "ref": ref,
            "task": data.get("task", "deploy"),
            "payload": data.get("payload", {}),
            "original_environment": environment,
            "environment": environment,
            "description": data.get("description"),
            "creator": _user(request.login),
            "created_at": now,
            "updated_at": now,
            "statuses_url": f"{url}/statuses",
            "repository_url": f"{self.url}/repos/{repo.full_name}",
            "transient_environment": bool(data.get("transient_environment", False)),
            "production_environment": bool(
                data.get("production_environment", environment == "production")
            ),
        }
        repo.deployments.append(deployment)
        return _Response(201, deployment)

    def _deployments(self, request: _Request, match: re.Match[str]) -> _Response:
        repo = self._repo(match)
        wanted = {k: request.query[k] for k in ("sha", "ref", "environment") if k in request.query}
        found = [d for d in repo.deployments if all(d[k] == v for k, v in wanted.items())]
        return self._page(request, sorted(found, key=lambda d: -int(d["id"])))

    def _deployment(self, repo: Repo, match: re.Match[str]) -> dict[str, Any]:
        for deployment in repo.deployments:
            if deployment["id"] == int(match["id"]):
                return deployment
        raise _Fail(404, "Not Found")

    def _deployment_status(self, request: _Request, match: re.Match[str]) -> _Response:
        repo = self._repo(match)
        deployment = self._deployment(repo, match)
        state = _required(request, "state")
        states = {"error", "failure", "inactive", "in_progress", "queued", "pending", "success"}
        if state not in states:
            raise _Fail(422, "Validation Failed")
        data = request.body
        status_id = next(_ids)
        now = _iso(_now())
        status = {
            "url": f"{deployment['url']}/statuses/{status_id}",
            "id": status_id,
            "state": state,
            "creator": _user(request.login),
            "description": data.get("description", ""),
            "environment": data.get("environment", deployment["environment"]),
            "target_url": data.get("target_url", ""),
            "log_url": data.get("log_url", data.get("target_url", "")),
            "environment_url": data.get("environment_url", ""),
            "created_at": now,
            "updated_at": now,
            "deployment_url": deployment["url"],
            "repository_url": deployment["repository_url"],
        }
        repo.deployment_statuses.setdefault(deployment["id"], []).insert(0, status)
        return _Response(201, status)

    def _deployment_statuses(self, request: _Request, match: re.Match[str]) -> _Response:
        repo = self._repo(match)
        deployment = self._deployment(repo, match)
        return self._page(request, repo.deployment_statuses.get(deployment["id"], []))

    def _status(self, request: _Request, match: re.Match[str]) -> _Response:
        repo = self._repo(match)
        state = _required(request, "state")
        if state not in {"error", "failure", "pending", "success"}:
            raise _Fail(422, "Validation Failed")
        data = request.body
        status_id = next(_ids)
        now = _iso(_now())
        status = {
            "url": f"{self.url}/repos/{repo.full_name}/statuses/{match['sha']}",
            "id": status_id,
            "state": state,
            "description": data.get("description"),
            "target_url": data.get("target_url"),
            "context": data.get("context", "default"),
            "created_at": now,
            "updated_at": now,
            "creator": _user(request.login),
            "sha": match["sha"],
        }
        repo.commit_statuses.insert(0, status)
        return _Response(201, {k: v for k, v in status.items() if k != "sha"})

    def _statuses(self, request: _Request, match: re.Match[str]) -> _Response:
        repo = self._repo(match)
        sha = self._resolve(repo, match["sha"])
        found = [{k: v for k, v in s.items() if k != "sha"} for s in repo.commit_statuses]
        found = [f for f, s in zip(found, repo.commit_statuses, strict=True) if s["sha"] == sha]
        return self._page(request, found)


class _FailWith(_Fail):
    def __init__(self, response: _Response) -> None:
        Exception.__init__(self, "queued fault")
        self.response = _Response(response.status, response.body, dict(response.headers))


def _required(request: _Request, key: str) -> str:
    if not isinstance(request.body, dict) or not isinstance(request.body.get(key), str):
        raise _Fail(422, f'Invalid request.\n\n"{key}" wasn\'t supplied.')
    value: str = request.body[key]
    return value


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as PyGithub's pooled session expects
    timeout = 10

    def answer(self, request: _Request) -> _Response:  # pragma: no cover - replaced per server
        raise NotImplementedError

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        request = _Request(
            method=self.command,
            path=parts.path.rstrip("/") or "/",
            query={k: v[-1] for k, v in parse_qs(parts.query).items()},
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        if body is None:
            response = _Fail(400, "Problems parsing JSON").response
        else:
            response = self.answer(request)
        payload = b"" if response.body is None else json.dumps(response.body).encode()
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log on the stand-in is what tests read."""
