"""The stand-in's own HTTP behaviour, checked with plain ``requests`` (no PyGithub in between)."""

from __future__ import annotations

import requests

from pullre.github.standin.server import GitHubStandIn
from tests.github_fixtures import GITHUB_TOKEN

AUTH = {"Authorization": f"Bearer {GITHUB_TOKEN}"}


def test_requests_without_a_valid_token_are_refused(github_standin: GitHubStandIn) -> None:
    github_standin.create_repo("acme", "shop")
    url = f"{github_standin.url}/repos/acme/shop/pulls"

    assert requests.get(url, timeout=5).status_code == 401
    assert requests.get(url, headers={"Authorization": "token nope"}, timeout=5).status_code == 401
    response = requests.get(url, headers=AUTH, timeout=5)
    assert response.status_code == 200
    assert response.json() == []


def test_link_headers_and_rate_limit_headers(github_standin: GitHubStandIn) -> None:
    for _ in range(5):
        github_standin.open_pull("acme", "shop")
    url = f"{github_standin.url}/repos/acme/shop/pulls"

    response = requests.get(url, params={"per_page": 2, "page": 2}, headers=AUTH, timeout=5)

    assert [p["number"] for p in response.json()] == [3, 2], "newest first, like GitHub"
    assert set(response.links) == {"prev", "first", "next", "last"}
    assert "page=3" in response.links["last"]["url"]
    assert response.headers["X-RateLimit-Remaining"] == str(github_standin.rate_limit - 1)
    assert response.headers["ETag"].startswith('W/"')


def test_conditional_request_gets_bodiless_304(github_standin: GitHubStandIn) -> None:
    github_standin.open_pull("acme", "shop")
    url = f"{github_standin.url}/repos/acme/shop/pulls/1"
    etag = requests.get(url, headers=AUTH, timeout=5).headers["ETag"]

    again = requests.get(url, headers={**AUTH, "If-None-Match": etag}, timeout=5)

    assert (again.status_code, again.content) == (304, b"")
    assert github_standin.rate_remaining == github_standin.rate_limit - 1
    assert [r.conditional for r in github_standin.requests] == [False, True]


def test_unknown_paths_are_not_found(github_standin: GitHubStandIn) -> None:
    response = requests.get(f"{github_standin.url}/nope", headers=AUTH, timeout=5)
    assert response.status_code == 404
    assert response.json()["message"] == "Not Found"
