"""A small stateful GitHub REST server on 127.0.0.1, for tests and the sandbox.

It speaks GitHub's protocol habits that the reconciler depends on: token and App-JWT checking,
rate-limit headers, Link-header pagination, weak ETags with ``If-None-Match`` answered by a
bodiless 304 that does not spend rate limit, and queued faults (5xx, primary and secondary rate
limits) sent exactly as GitHub sends them. The resources it serves and the driving API
(``open_pull``, ``push``, ``merge``...) come from ``resources`` (with ``deployments`` and
``contents``) and ``state``, the HTTP reading and writing from ``handler``; everything is in
memory.

    with GitHubStandIn(tokens={"secret": "pullre-bot"}) as gh:
        gh.open_pull("acme", "shop", labels=["staging"])
        ...  # point [github] api_url at gh.url
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal

import jwt

from pullre.github.standin import token_grants
from pullre.github.standin.faults import FaultBody, fault
from pullre.github.standin.handler import RequestHandler
from pullre.github.standin.resources import GitHubResources, Route
from pullre.github.standin.state import Fail, Request, Response, utc_now


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


class GitHubStandIn(GitHubResources):
    """The fake GitHub server; ``tokens`` maps accepted tokens to the login they act as."""

    def __init__(
        self,
        *,
        tokens: dict[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        rate_limit: int = 5000,
    ) -> None:
        super().__init__()
        self._host, self._port = host, port
        self._tokens: dict[str, tuple[str, datetime | None]] = {
            token: (login, None) for token, login in (tokens or {}).items()
        }
        self._apps: dict[int, _App] = {}
        #: Every installation token minted, with what its request asked for (tests read it).
        self.token_grants: list[token_grants.TokenGrant] = []
        #: Queued faults, each for any request (None) or for paths matching its pattern.
        self._faults: list[tuple[re.Pattern[str] | None, Response]] = []
        self.rate_limit = rate_limit
        self.rate_remaining = rate_limit
        self.rate_reset = utc_now() + timedelta(hours=1)
        self.requests: list[LoggedRequest] = []
        self._server: ThreadingHTTPServer | None = None
        self._url: str | None = None
        self._thread: threading.Thread | None = None
        token_path = re.compile(r"/app/installations/(?P<id>\d+)/access_tokens$")
        self._routes: list[tuple[str, re.Pattern[str], Route]] = [
            ("POST", token_path, self._access_token),
            *self.routes(),
        ]

    def start(self) -> GitHubStandIn:
        standin = self

        class Handler(RequestHandler):
            def answer(self, request: Request) -> Response:
                return standin._answer(request)

        self._server = ThreadingHTTPServer((self._host, self._port), Handler)
        host, port = self._server.server_address[:2]
        self._url = f"http://{host!s}:{port}"
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
        """The API root, as ``[github] api_url`` (kept after stop() for a request in flight)."""
        assert self._url is not None, "start() the stand-in first"
        return self._url

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

    def fail_next(
        self,
        count: int = 1,
        status: int = 500,
        *,
        body: FaultBody = "json",
        path: str | None = None,
    ) -> None:
        """The next ``count`` requests answer ``status`` with ``body``: GitHub's JSON error, an
        HTML page (GitHub's for 500/502/503, a proxy's otherwise) or truncated JSON. With
        ``path`` (a regular expression searched in the request path) only matching requests
        do; others are answered as usual. GETs on 5xx are retried by clients: count those."""
        pattern = None if path is None else re.compile(path)
        with self._lock:
            self._faults += [(pattern, fault(status, body)) for _ in range(count)]

    def rate_limit_next(
        self, count: int = 1, *, kind: Literal["primary", "secondary"] = "primary"
    ) -> None:
        """Primary: 403 with ``X-RateLimit-Remaining: 0``; secondary: 429 with Retry-After."""
        with self._lock:
            for _ in range(count):
                if kind == "primary":
                    response = Fail(
                        403,
                        "API rate limit exceeded for user ID 1. If you reach out to GitHub "
                        "Support for help, please include the request ID.",
                    ).response
                    response.headers["X-RateLimit-Remaining"] = "0"
                else:
                    response = Fail(
                        429,
                        "You have exceeded a secondary rate limit. Please wait a few minutes "
                        "before you try again.",
                        {"Retry-After": "60"},
                    ).response
                self._faults.append((None, response))

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def _rate_headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(self.rate_remaining),
            "X-RateLimit-Reset": str(int(self.rate_reset.timestamp())),
            "X-RateLimit-Used": str(self.rate_limit - self.rate_remaining),
            "X-RateLimit-Resource": "core",
        }

    def _answer(self, request: Request) -> Response:
        conditional = "if-none-match" in request.headers
        with self._lock:
            try:
                response = self._dispatch(request)
            except Fail as failure:
                response = failure.response
            headers = self._rate_headers()
            headers.update(response.headers)
            response.headers = headers
            query = "&".join(f"{k}={v}" for k, v in sorted(request.query.items()))
            self.requests.append(
                LoggedRequest(request.method, request.path, query, response.status, conditional)
            )
            return response

    def _dispatch(self, request: Request) -> Response:
        for index, (pattern, queued) in enumerate(self._faults):
            if pattern is None or pattern.search(request.path):
                del self._faults[index]
                raise Fail.replaying(queued)
        route, match = self._route(request)
        if not request.path.startswith("/app/"):
            request.login = self._authenticate(request)
            if self.rate_remaining <= 0:
                raise Fail(403, "API rate limit exceeded for user ID 1.")
        response = route(request, match)
        if response.paginated:
            response = self._page(request, response.body)
        etag = request.headers.get("if-none-match")
        if request.method == "GET" and response.status == 200:
            digest = hashlib.sha256(json.dumps(response.body, sort_keys=True).encode()).hexdigest()
            response.headers["ETag"] = f'W/"{digest}"'
            if etag is not None and response.headers["ETag"] in re.split(r"\s*,\s*", etag):
                # GitHub: a 304 to a conditional request does not count against the rate limit.
                return Response(304, None, {"ETag": response.headers["ETag"]})
        self.rate_remaining -= 1
        return response

    def _route(self, request: Request) -> tuple[Route, re.Match[str]]:
        for verb, pattern, route in self._routes:
            match = pattern.match(request.path)
            if match and verb == request.method:
                return route, match
        raise Fail(404, "Not Found")

    def _authenticate(self, request: Request) -> str:
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() not in {"token", "bearer"} or credential not in self._tokens:
            raise Fail(401, "Bad credentials")
        login, expires_at = self._tokens[credential]
        if expires_at is not None and expires_at <= datetime.now(UTC):
            raise Fail(401, "Bad credentials")
        return login

    def _access_token(self, request: Request, match: re.Match[str]) -> Response:
        app = self._apps.get(int(match["id"]))
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        if app is None:
            raise Fail(404, "Not Found")
        if scheme.lower() != "bearer":
            raise Fail(401, "A JSON web token could not be decoded")
        try:
            claims = jwt.decode(
                credential,
                app.public_key_pem,
                algorithms=["RS256"],
                options={"require": ["iat", "exp", "iss"]},
            )
        except jwt.PyJWTError as exc:
            raise Fail(401, f"A JSON web token could not be decoded ({exc})") from None
        if str(claims["iss"]) != str(app.app_id):
            raise Fail(401, "'Issuer' claim ('iss') must be an Integer")
        token = "ghs_" + secrets.token_urlsafe(27)
        expires_at = utc_now() + app.token_lifetime
        repos = self._repos.values()
        granted = token_grants.grant(token, app.installation_id, request.body, repos, expires_at)
        self.token_grants.append(granted)
        self._tokens[token] = ("pullre[bot]", expires_at)
        return Response(201, token_grants.answer(granted, repos))

    def _page(self, request: Request, items: list[Any]) -> Response:
        try:
            per_page = min(max(int(request.query.get("per_page", "30")), 1), 100)
            page = max(int(request.query.get("page", "1")), 1)
        except ValueError:
            raise Fail(422, "Validation Failed") from None
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
        return Response(200, items[(page - 1) * per_page : page * per_page], headers)
