"""How requests reach GitHub: retries that never sleep long, counting, typed failures.

PyGithub's default ``GithubRetry`` sleeps until ``X-RateLimit-Reset`` (up to an hour) and
urllib3's ``Retry`` sleeps for ``Retry-After`` on 429/503; either would stall a reconcile pass.
``quick_retry`` only retries idempotent requests on 5xx and connection errors, a few times with
a short backoff, and never honours Retry-After: rate limits surface at once as
``GitHubRateLimited(reset_at)`` and the pass decides what to skip.
"""

from __future__ import annotations

import html
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

from github import Auth
from github.InstallationAuthorization import InstallationAuthorization
from github.Requester import Requester
from urllib3 import BaseHTTPResponse
from urllib3.connectionpool import ConnectionPool
from urllib3.util.retry import Retry

from pullre.github.port import (
    GitHubAuthError,
    GitHubError,
    GitHubNotFound,
    GitHubRateLimited,
    GitHubUnavailable,
)


@dataclass
class GitHubStats:
    """What this adapter has cost so far, for benchmarks and ``/metrics``.

    ``requests`` counts every HTTP request sent, including retries and installation-token
    requests; ``not_modified`` the 304s among them (free of rate limit).
    """

    requests: int = 0
    not_modified: int = 0
    retries: int = 0
    token_requests: int = 0
    rate_limit_remaining: int | None = None
    rate_limit_reset: datetime | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(
        self, *, retry: bool = False, token: bool = False, not_modified: bool = False
    ) -> None:
        with self._lock:
            self.requests += 1
            self.retries += retry
            self.token_requests += token
            self.not_modified += not_modified


class CountingRetry(Retry):
    """urllib3 retries happen below PyGithub; counting them here keeps ``requests`` honest."""

    stats: GitHubStats

    def new(self, **kw: Any) -> Self:
        retry = super().new(**kw)
        retry.stats = self.stats
        return retry

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        self.stats.count(retry=True)  # reached only when another attempt will be sent
        return retry


def quick_retry(stats: GitHubStats, *, retries: int = 2, backoff_factor: float = 0.25) -> Retry:
    retry = CountingRetry(
        total=retries,
        status_forcelist=(500, 502, 503, 504),
        backoff_factor=backoff_factor,
        backoff_max=2.0,
        raise_on_status=False,  # hand the last 5xx to us, to raise GitHubUnavailable(status)
        respect_retry_after_header=False,
    )
    retry.stats = stats
    return retry


class CountingInstallationAuth(Auth.AppInstallationAuth):
    """PyGithub's installation auth (token cached until 20 s before expiry), counted."""

    def __init__(self, app_auth: Auth.AppAuth, installation_id: int, stats: GitHubStats) -> None:
        super().__init__(app_auth, installation_id)
        self._stats = stats

    def _get_installation_authorization(self) -> InstallationAuthorization:
        self._stats.count(token=True)
        return super()._get_installation_authorization()


#: GitHub refuses (422) a commit or deployment status whose description is longer.
DESCRIPTION_CHARS = 140

#: How much of an error body a message keeps: enough to tell "Unicorn!" from "Bad credentials",
#: short enough for an event line and never a whole HTML page.
MESSAGE_CHARS = 120


def decode(status: int, headers: dict[str, Any], text: str | None, what: str) -> Any:
    """The JSON of an answer, or the ``GitHubError`` its status calls for.

    GitHub's edge and the proxies before it answer 502/504 (and some 403s) with HTML pages, and
    a connection cut mid-answer leaves truncated JSON; neither may escape as a
    ``JSONDecodeError``. An error status keeps its meaning (5xx unavailable, 401 auth...) with
    the page reduced to its title; a 2xx that is not JSON is a broken answer, so unavailable.
    """
    if status == 304 or not text:
        data = None
    else:
        try:
            data = json.loads(text)
        except ValueError:
            if status >= 400:
                raise error_for(status, headers, summary(text), what) from None
            raise GitHubUnavailable(
                f"{what}: HTTP {status} answer is not JSON: {summary(text)}", status
            ) from None
    if status >= 400:
        raise error_for(status, headers, data, what)
    return data


@contextmanager
def expected_shape(what: str, status: int | None = None) -> Iterator[None]:
    """Reading an answer that lacks a documented key (or is a list where an object belongs)
    is GitHub's fault, told as a ``GitHubError``, never a ``KeyError`` out of a pass."""
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
        raise GitHubError(f"{what}: unexpected answer ({cut(detail)})", status) from None


def summary(text: str) -> str:
    """A body for a message: an HTML page's title (else its text), whitespace folded, cut."""
    title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    if title and title.group(1).strip():
        text = title.group(1)
    elif "<" in text:
        text = re.sub(r"<(script|style)\b.*?</\1\s*>", " ", text, flags=re.I | re.DOTALL)
        text = re.sub(r"<[^>]*>", " ", text)
    return cut(" ".join(html.unescape(text).split()))


def cut(text: str, limit: int = MESSAGE_CHARS) -> str:
    """``text`` at most ``limit`` characters, an ellipsis marking a cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def error_for(status: int, headers: dict[str, Any], data: Any, what: str) -> GitHubError:
    """The exception for an error answer: 429 or a 403 with rate-limit signs is rate limited,
    another 401/403 is an auth problem (bad or insufficient credentials), 404 not found, 5xx
    unavailable."""
    if isinstance(data, dict):  # PyGithub wraps a non-JSON body as {"data": body}
        message = str(data.get("message") or summary(str(data.get("data") or "")))
    else:
        message = str(data or "")
    text = f"{what}: HTTP {status} {cut(' '.join(message.split()))}".rstrip()
    limited = status == 429 or (
        status == 403
        and (
            headers.get("x-ratelimit-remaining") == "0"
            or "retry-after" in headers
            or Requester.isRateLimitError(message)
        )
    )
    if limited:
        return GitHubRateLimited(text, status, reset_at(headers))
    if status in (401, 403):
        return GitHubAuthError(text, status)
    if status == 404:
        return GitHubNotFound(text, status)
    if status >= 500:
        return GitHubUnavailable(text, status)
    return GitHubError(text, status)


def reset_at(headers: dict[str, Any]) -> datetime:
    now = datetime.now(UTC)
    retry_after = str(headers.get("retry-after", ""))
    if retry_after.isdigit():
        return now + timedelta(seconds=int(retry_after))
    reset = str(headers.get("x-ratelimit-reset", ""))
    if reset.isdigit():
        return datetime.fromtimestamp(int(reset), UTC)
    return now + timedelta(minutes=1)
