"""Fetch tokens: the adapter asks GitHub (the stand-in, over HTTP) for an installation token
narrowed to one repository and ``contents: read``, and the controller reuses one per repository
until ten minutes before it expires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from github import Auth

from pullre.environments import clone_urls, fetch_tokens
from pullre.github.adapter import adapter_from_settings
from pullre.github.port import GitHubAuthError, GitHubError
from pullre.github.standin.server import GitHubStandIn
from pullre.models import Repository
from tests.github_fixtures import make_test_adapter
from tests.test_github import app_settings, make_app_key


@pytest.fixture
def app_standin(github_standin: GitHubStandIn, tmp_path: Path) -> tuple[GitHubStandIn, Path]:
    key_file, public_pem = make_app_key(tmp_path)
    github_standin.register_app(42, public_pem, installation_id=7)
    github_standin.create_repo("acme", "shop")
    github_standin.create_repo("acme", "other")
    return github_standin, key_file


def test_a_fetch_token_reads_one_repository_only(
    app_standin: tuple[GitHubStandIn, Path],
) -> None:
    standin, key_file = app_standin
    adapter = adapter_from_settings(app_settings(standin.url, key_file), backoff_factor=0)

    minted = adapter.mint_fetch_token("acme", "shop")

    (grant,) = standin.token_grants
    assert grant.requested == {"repositories": ["shop"], "permissions": {"contents": "read"}}
    assert grant.token == minted.token
    assert grant.can_read("acme/shop")
    assert not grant.can_read("acme/other")
    assert grant.permissions == {"metadata": "read", "contents": "read"}
    assert minted.repository == "acme/shop"
    assert timedelta(minutes=59) < minted.expires_at - datetime.now(UTC) <= timedelta(hours=1)
    assert minted.token not in repr(minted)
    # Signed with the App's JWT, not sent with the adapter's own installation token.
    assert [r.path for r in standin.requests] == ["/app/installations/7/access_tokens"]
    adapter.close()


def test_a_personal_token_is_never_turned_into_a_fetch_token(
    github_standin: GitHubStandIn,
) -> None:
    adapter = make_test_adapter(github_standin, Auth.Token("controller-token"))
    with pytest.raises(GitHubAuthError, match="GitHub App"):
        adapter.mint_fetch_token("acme", "shop")
    assert github_standin.requests == []


def test_an_unknown_repository_or_a_foreign_key_is_refused(
    app_standin: tuple[GitHubStandIn, Path], tmp_path: Path
) -> None:
    standin, key_file = app_standin
    adapter = adapter_from_settings(app_settings(standin.url, key_file), backoff_factor=0)
    with pytest.raises(GitHubError) as caught:
        adapter.mint_fetch_token("acme", "nope")
    assert caught.value.status == 422
    (tmp_path / "other").mkdir()
    other_key, _ = make_app_key(tmp_path / "other")
    stranger = adapter_from_settings(app_settings(standin.url, other_key), backoff_factor=0)
    with pytest.raises(GitHubAuthError):
        stranger.mint_fetch_token("acme", "shop")
    assert standin.token_grants == []


def test_tokens_are_reused_per_repository_until_ten_minutes_before_expiry(
    app_standin: tuple[GitHubStandIn, Path],
) -> None:
    standin, key_file = app_standin
    adapter = adapter_from_settings(app_settings(standin.url, key_file), backoff_factor=0)
    tokens = fetch_tokens.FetchTokens(adapter.mint_fetch_token)

    first = tokens.get("acme", "shop")
    assert tokens.get("acme", "shop") == first
    other = tokens.get("acme", "other")
    assert other.token != first.token
    assert len(standin.token_grants) == 2

    # A token with less than ten minutes left is not handed out again.
    standin.set_token_lifetime(7, timedelta(minutes=9))
    short = tokens.get("acme", "shop")  # the held one still has most of an hour
    assert short == first
    later = fetch_tokens.FetchTokens(
        adapter.mint_fetch_token, clock=lambda: datetime.now(UTC) + timedelta(minutes=51)
    )
    assert later.get("acme", "shop").token != first.token
    renewed = later.get("acme", "shop")
    assert renewed.token != first.token
    assert len(standin.token_grants) == 4, "a 9-minute token is renewed at every ask"


def test_github_failing_becomes_the_reason_an_assignment_has_no_token(
    app_standin: tuple[GitHubStandIn, Path],
) -> None:
    standin, key_file = app_standin
    adapter = adapter_from_settings(
        app_settings(standin.url, key_file), backoff_factor=0, retries=0
    )
    tokens = fetch_tokens.FetchTokens(adapter.mint_fetch_token)
    standin.fail_next(1, 502, body="html", path="access_tokens")

    member = fetch_tokens.member(Repository(owner="acme", name="shop"), tokens)

    assert set(member) == {"error"}
    assert "could not get a fetch token" in member["error"]
    assert "502" in member["error"]
    assert set(fetch_tokens.member(Repository(owner="acme", name="shop"), tokens)) == {
        "token",
        "expires_at",
    }


@pytest.mark.parametrize(
    ("clone_url", "api_url", "goes"),
    [
        ("https://github.com/acme/shop.git", "https://api.github.com", True),
        ("https://ghe.example/acme/shop.git", "https://ghe.example/api/v3", True),
        ("http://127.0.0.1:9/acme/shop.git", "http://127.0.0.1:8", True),
        ("https://mirror.example/acme/shop.git", "https://api.github.com", False),
        ("git@github.com:acme/shop.git", "https://api.github.com", False),
        ("ssh://git@github.com/acme/shop.git", "https://api.github.com", False),
        ("http://github.com/acme/shop.git", "https://api.github.com", False),
        ("https://someone@github.com/acme/shop.git", "https://api.github.com", False),
        ("/srv/git/shop.git", "https://api.github.com", False),
    ],
)
def test_a_token_goes_only_to_githubs_own_host(clone_url: str, api_url: str, goes: bool) -> None:
    assert clone_urls.token_may_go(clone_url, api_url) is goes
    assert fetch_tokens.wanted(clone_url, api_url, github_app=True) is goes
    assert not fetch_tokens.wanted(clone_url, api_url, github_app=False)
