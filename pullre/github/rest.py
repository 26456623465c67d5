"""Every request pullre makes to GitHub: one choke point over PyGithub's ``Requester``.

``Requester.requestJson`` returns status and headers without raising, so ``RestClient._request``
counts each request (304s apart: they spend no rate limit), reads the rate-limit headers and
turns every failure into a ``pullre.github.port`` exception; listings are read page by page with
each page's ETag. Writes are paced by PyGithub; retries, counting and error mapping live in
``pullre.github.transport``. ``PyGithubAdapter`` (``adapter``) builds the port's calls on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests
from github import Auth, Github, GithubException

from pullre.github.port import GitHubError, GitHubUnavailable
from pullre.github.transport import GitHubStats, decode, error_for, quick_retry, reset_at

PER_PAGE = 100


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    etag: str
    has_next: bool


class RestClient:
    """PyGithub's ``Requester`` made into pullre's one way to ask GitHub anything."""

    def __init__(
        self,
        auth: Auth.Auth,
        *,
        base_url: str,
        stats: GitHubStats | None = None,
        timeout: int = 10,
        retries: int = 2,
        backoff_factor: float = 0.25,
        seconds_between_requests: float = 0.0,
        seconds_between_writes: float = 1.0,
    ) -> None:
        self.stats = stats or GitHubStats()
        self.etags: dict[str, str] = {}
        self.seconds_between_writes = seconds_between_writes
        # Writes are paced (GitHub asks for >= 1 s between mutating requests to stay clear of
        # secondary rate limits); reads are serial already, so they are not slowed down.
        self._github = Github(
            auth=auth,
            base_url=base_url,
            timeout=timeout,
            user_agent="pullre",
            per_page=PER_PAGE,
            retry=quick_retry(self.stats, retries=retries, backoff_factor=backoff_factor),
            seconds_between_requests=seconds_between_requests,
            seconds_between_writes=seconds_between_writes,
        )
        self._requester = self._github.requester
        self._auth = auth

    def close(self) -> None:
        self._github.close()

    def _request(
        self,
        verb: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        etag: str | None = None,
    ) -> tuple[int, dict[str, Any], Any]:
        headers = {"Accept": "application/vnd.github+json"}
        if etag:
            headers["If-None-Match"] = etag
        what = f"{verb} {path}"
        try:
            status, response_headers, text = self._requester.requestJson(
                verb, path, params, headers, body
            )
        except GithubException as exc:  # raised while fetching an installation token
            raise error_for(exc.status, exc.headers or {}, exc.data, what) from exc
        except requests.RequestException as exc:
            raise GitHubUnavailable(f"{what}: {exc}") from exc
        except (ValueError, KeyError) as exc:  # an installation-token answer PyGithub misread
            raise GitHubUnavailable(f"{what}: installation token answer unreadable") from exc
        self.stats.count(not_modified=status == 304)
        remaining = response_headers.get("x-ratelimit-remaining")
        if remaining is not None and str(remaining).isdigit():
            self.stats.rate_limit_remaining = int(remaining)
            self.stats.rate_limit_reset = reset_at(
                {"x-ratelimit-reset": response_headers.get("x-ratelimit-reset", "")}
            )
        return status, response_headers, decode(status, response_headers, text, what)

    @staticmethod
    def _repo(owner: str, name: str) -> str:
        return f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}"

    def _page(self, path: str, page: int, etag: str | None = None) -> Page | None:
        """One page of a listing, or None when ``etag`` still matches (304)."""
        params: dict[str, Any] = {"per_page": PER_PAGE, "page": page}
        if path.endswith("/pulls"):
            params["state"] = "open"
        status, headers, data = self._request("GET", path, params=params, etag=etag)
        if status == 304:
            return None
        if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
            raise GitHubError(f"GET {path}: unexpected answer (not a list of objects)", status)
        return Page(data, str(headers.get("etag", "")), 'rel="next"' in headers.get("link", ""))

    def _all_pages(self, path: str, first: Page | None = None) -> list[Page]:
        pages = [first or self._page(path, 1)]
        while pages[-1] is not None and pages[-1].has_next:
            pages.append(self._page(path, len(pages) + 1))
        return [page for page in pages if page is not None]
