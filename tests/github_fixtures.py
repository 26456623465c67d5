"""GitHub fixtures: the stand-in on 127.0.0.1 (random port) and the real adapter pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from github import Auth

from pullre.github.adapter import PyGithubAdapter
from pullre.github.standin.server import GitHubStandIn
from pullre.github.transport import GitHubStats

GITHUB_TOKEN = "test-token-0123456789"


@pytest.fixture
def github_standin() -> Iterator[GitHubStandIn]:
    """A fresh fake GitHub per test, accepting ``GITHUB_TOKEN`` (login ``pullre-bot``)."""
    with GitHubStandIn(tokens={GITHUB_TOKEN: "pullre-bot"}) as standin:
        yield standin


def make_test_adapter(standin: GitHubStandIn, auth: Auth.Auth | None = None) -> PyGithubAdapter:
    """No backoff and no write pacing: tests must not sleep; retries stay as configured."""
    return PyGithubAdapter(
        auth or Auth.Token(GITHUB_TOKEN),
        base_url=standin.url,
        stats=GitHubStats(),
        timeout=5,
        retries=2,
        backoff_factor=0,
        seconds_between_writes=0,
    )


@pytest.fixture
def github(github_standin: GitHubStandIn) -> Iterator[PyGithubAdapter]:
    adapter = make_test_adapter(github_standin)
    yield adapter
    adapter.close()
