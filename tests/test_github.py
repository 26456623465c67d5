"""The GitHub adapter, end to end: PyGithub transport -> real HTTP -> the local stand-in."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from github import Auth

from pullre.config import ConfigError, GithubSettings
from pullre.github.adapter import PyGithubAdapter, adapter_from_settings, make_github
from pullre.github.port import (
    GitHubAuthError,
    GitHubNotFound,
    GitHubRateLimited,
    GitHubUnavailable,
    NotModified,
    OpenPulls,
)
from pullre.github.standin.server import GitHubStandIn
from tests.github_fixtures import make_test_adapter


def listing(result: OpenPulls | NotModified) -> OpenPulls:
    assert isinstance(result, OpenPulls), result
    return result


def test_lists_every_open_pull_across_pages(
    github_standin: GitHubStandIn, github: PyGithubAdapter
) -> None:
    numbers = [github_standin.open_pull("acme", "shop", title=f"PR {i}") for i in range(250)]
    github_standin.close("acme", "shop", numbers[10])

    pulls = listing(github.list_open_pulls("acme", "shop")).pulls

    assert sorted(p.number for p in pulls) == sorted(set(numbers) - {numbers[10]})
    pages = [r for r in github_standin.requests if r.path == "/repos/acme/shop/pulls"]
    assert [r.query for r in pages] == [f"page={n}&per_page=100&state=open" for n in (1, 2, 3)], (
        "every page, 100 at a time"
    )
    assert github.stats.requests == 3


def test_pull_fields_follow_githubs_shapes(
    github_standin: GitHubStandIn, github: PyGithubAdapter
) -> None:
    number = github_standin.open_pull(
        "acme", "shop", title="Fix cart", author="alice", head_ref="fix-cart",
        head_sha="a" * 40, draft=True, labels=["staging", "bug"],
    )  # fmt: skip

    (pull,) = listing(github.list_open_pulls("acme", "shop")).pulls

    assert (pull.number, pull.title, pull.author_login) == (number, "Fix cart", "alice")
    assert (pull.head_ref, pull.head_sha, pull.head_repository) == ("fix-cart", "a" * 40, None)
    assert (pull.state, pull.draft, pull.labels) == ("open", True, ("staging", "bug"))
    assert pull.created_at.tzinfo is UTC or pull.created_at.utcoffset() == timedelta(0)
    assert abs(pull.updated_at - datetime.now(UTC)) < timedelta(minutes=1)


def test_fork_pull_names_its_head_repository(
    github_standin: GitHubStandIn, github: PyGithubAdapter
) -> None:
    github_standin.open_pull("acme", "shop", fork_owner="mallory")

    (pull,) = listing(github.list_open_pulls("acme", "shop")).pulls

    assert pull.head_repository == "mallory/shop"


def test_unchanged_repository_costs_one_free_request(
    github_standin: GitHubStandIn, github: PyGithubAdapter
) -> None:
    github_standin.open_pull("acme", "shop")
    first = listing(github.list_open_pulls("acme", "shop"))
    remaining = github.stats.rate_limit_remaining
    github_standin.clear_requests()

    second = github.list_open_pulls("acme", "shop")

    assert second == NotModified(first.etag)
    assert [(r.status, r.conditional) for r in github_standin.requests] == [(304, True)]
    assert github_standin.rate_remaining == remaining, "a 304 spends no rate limit"
    assert github.stats.rate_limit_remaining == remaining
    assert (github.stats.requests, github.stats.not_modified) == (2, 1)
    assert github.etags == {"acme/shop": first.etag}


def test_push_gives_a_new_listing(github_standin: GitHubStandIn, github: PyGithubAdapter) -> None:
    number = github_standin.open_pull("acme", "shop")
    before = listing(github.list_open_pulls("acme", "shop"))

    sha = github_standin.push("acme", "shop", number)
    after = listing(github.list_open_pulls("acme", "shop"))

    assert after.pulls[0].head_sha == sha != before.pulls[0].head_sha
    assert after.etag != before.etag
    assert isinstance(github.list_open_pulls("acme", "shop"), NotModified)


def test_change_on_a_later_page_is_not_hidden_by_page_one(
    github_standin: GitHubStandIn, github: PyGithubAdapter
) -> None:
    numbers = [github_standin.open_pull("acme", "shop") for _ in range(150)]
    listing(github.list_open_pulls("acme", "shop"))
    assert isinstance(github.list_open_pulls("acme", "shop"), NotModified)

    # Newest first: the oldest PR sits on page 2, so page 1 stays byte-identical.
    sha = github_standin.push("acme", "shop", numbers[0])
    github_standin.clear_requests()
    pulls = listing(github.list_open_pulls("acme", "shop")).pulls

    assert {p.number: p.head_sha for p in pulls}[numbers[0]] == sha
    assert len(pulls) == 150
    assert [r.status for r in github_standin.requests][:2] == [304, 200]


def test_seeded_etag_survives_a_restart(
    github_standin: GitHubStandIn, github: PyGithubAdapter
) -> None:
    github_standin.open_pull("acme", "shop")
    etag = listing(github.list_open_pulls("acme", "shop")).etag
    restarted = make_test_adapter(github_standin)

    assert restarted.list_open_pulls("acme", "shop", etag=etag) == NotModified(etag)
    assert github_standin.requests[-1].status == 304
    restarted.close()


def test_get_pull_tells_closed_from_merged(
    github_standin: GitHubStandIn, github: PyGithubAdapter
) -> None:
    closed = github_standin.open_pull("acme", "shop")
    merged = github_standin.open_pull("acme", "shop")
    github_standin.close("acme", "shop", closed)
    github_standin.merge("acme", "shop", merged)

    assert listing(github.list_open_pulls("acme", "shop")).pulls == ()
    assert github.get_pull("acme", "shop", closed).state == "closed"
    assert github.get_pull("acme", "shop", merged).state == "merged"
    github_standin.reopen("acme", "shop", closed)
    assert github.get_pull("acme", "shop", closed).state == "open"


def test_missing_pull_is_not_found(github_standin: GitHubStandIn, github: PyGithubAdapter) -> None:
    github_standin.create_repo("acme", "shop")
    with pytest.raises(GitHubNotFound) as caught:
        github.get_pull("acme", "shop", 99)
    assert caught.value.status == 404


@pytest.mark.parametrize(("kind", "status"), [("primary", 403), ("secondary", 429)])
def test_rate_limit_raises_at_once(
    github_standin: GitHubStandIn, github: PyGithubAdapter, kind: str, status: int
) -> None:
    github_standin.create_repo("acme", "shop")
    github_standin.rate_limit_next(kind="primary" if kind == "primary" else "secondary")

    started = time.monotonic()
    with pytest.raises(GitHubRateLimited) as caught:
        github.list_open_pulls("acme", "shop")
    elapsed = time.monotonic() - started

    assert elapsed < 0.5, "no sleeping until the reset inside PyGithub"
    assert caught.value.status == status
    assert len(github_standin.requests) == 1, "rate limits are not retried"
    if kind == "primary":  # X-RateLimit-Reset from the stand-in: an hour from now
        assert caught.value.reset_at == github_standin.rate_reset
        assert github.stats.rate_limit_remaining == 0
    else:  # Retry-After: 60
        delay = caught.value.reset_at - datetime.now(UTC)
        assert timedelta(seconds=55) < delay <= timedelta(seconds=60)


def test_exhausted_rate_limit_raises_until_reset(
    github_standin: GitHubStandIn, github: PyGithubAdapter
) -> None:
    github_standin.create_repo("acme", "shop")
    github_standin.rate_remaining = 0

    with pytest.raises(GitHubRateLimited):
        github.list_open_pulls("acme", "shop")


def test_server_errors_are_retried_then_raised(
    github_standin: GitHubStandIn, github: PyGithubAdapter
) -> None:
    github_standin.open_pull("acme", "shop")
    github_standin.fail_next(3, status=502)

    with pytest.raises(GitHubUnavailable) as caught:
        github.list_open_pulls("acme", "shop")

    assert caught.value.status == 502
    assert [r.status for r in github_standin.requests] == [502, 502, 502], "1 try + 2 retries"
    assert (github.stats.requests, github.stats.retries) == (3, 2)


def test_a_passing_retry_recovers(github_standin: GitHubStandIn, github: PyGithubAdapter) -> None:
    github_standin.open_pull("acme", "shop")
    github_standin.fail_next(2, status=500)

    assert len(listing(github.list_open_pulls("acme", "shop")).pulls) == 1
    assert [r.status for r in github_standin.requests] == [500, 500, 200]


def test_writes_are_not_retried(github_standin: GitHubStandIn, github: PyGithubAdapter) -> None:
    number = github_standin.open_pull("acme", "shop")
    github_standin.fail_next(1, status=500)

    with pytest.raises(GitHubUnavailable):
        github.create_comment("acme", "shop", number, "hello")

    assert github_standin.repo("acme", "shop").comments == {}, "no duplicate comment risk"
    assert len(github_standin.requests) == 1


def test_unreachable_github_is_unavailable() -> None:
    with GitHubStandIn() as standin:
        url = standin.url
    adapter = PyGithubAdapter(Auth.Token("x"), base_url=url, retries=0, timeout=2)
    with pytest.raises(GitHubUnavailable) as caught:
        adapter.list_open_pulls("acme", "shop")
    assert caught.value.status is None


def test_bad_token_is_an_auth_error(github_standin: GitHubStandIn) -> None:
    github_standin.create_repo("acme", "shop")
    adapter = make_test_adapter(github_standin, Auth.Token("wrong"))

    with pytest.raises(GitHubAuthError) as caught:
        adapter.list_open_pulls("acme", "shop")

    assert caught.value.status == 401
    assert [r.status for r in github_standin.requests] == [401]


def make_app_key(directory: Path) -> tuple[Path, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    path = directory / "app.pem"
    path.write_bytes(pem)
    return path, public.decode()


def app_settings(url: str, key_file: Path, app_id: int = 42) -> GithubSettings:
    return GithubSettings(
        api_url=url,
        token="",
        app_id=app_id,
        app_private_key_file=str(key_file),
        installation_id=7,
        webhook_secret="",
        write_interval=0,
    )


def token_requests(standin: GitHubStandIn) -> list[int]:
    return [r.status for r in standin.requests if r.path.endswith("/access_tokens")]


def test_app_installation_token_is_fetched_once_and_reused(
    github_standin: GitHubStandIn, tmp_path: Path
) -> None:
    key_file, public_pem = make_app_key(tmp_path)
    github_standin.register_app(42, public_pem, installation_id=7)
    number = github_standin.open_pull("acme", "shop")
    adapter = make_github(app_settings(github_standin.url, key_file))
    assert isinstance(adapter, PyGithubAdapter)

    listing(adapter.list_open_pulls("acme", "shop"))
    adapter.get_pull("acme", "shop", number)
    comment = adapter.create_comment("acme", "shop", number, "Staging is ready")

    assert token_requests(github_standin) == [201]
    assert comment.author_login == "pullre[bot]", "calls carry the installation token"
    assert adapter.stats.token_requests == 1
    assert adapter.stats.requests == 4
    adapter.close()


def test_app_token_near_expiry_is_renewed(github_standin: GitHubStandIn, tmp_path: Path) -> None:
    key_file, public_pem = make_app_key(tmp_path)
    # PyGithub renews 20 s before expiry, so a 10 s token is "near expiry" from the start.
    github_standin.register_app(
        42, public_pem, installation_id=7, token_lifetime=timedelta(seconds=10)
    )
    github_standin.create_repo("acme", "shop")
    settings = app_settings(github_standin.url, key_file)
    adapter = adapter_from_settings(settings, seconds_between_writes=0, backoff_factor=0)

    adapter.list_open_pulls("acme", "shop")
    adapter.list_open_pulls("acme", "shop")
    assert token_requests(github_standin) == [201, 201]

    github_standin.set_token_lifetime(7, timedelta(hours=1))
    adapter.list_open_pulls("acme", "shop")
    adapter.list_open_pulls("acme", "shop")
    assert token_requests(github_standin) == [201, 201, 201]


def test_app_jwt_signed_by_another_key_is_refused(
    github_standin: GitHubStandIn, tmp_path: Path
) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "other").mkdir()
    _, public_pem = make_app_key(tmp_path / "real")
    other_key, _ = make_app_key(tmp_path / "other")
    github_standin.register_app(42, public_pem, installation_id=7)
    github_standin.create_repo("acme", "shop")
    adapter = make_github(app_settings(github_standin.url, other_key))

    with pytest.raises(GitHubAuthError):
        adapter.list_open_pulls("acme", "shop")
    assert token_requests(github_standin) == [401]


def test_make_github_needs_credentials(github_standin: GitHubStandIn) -> None:
    settings = GithubSettings(
        api_url=github_standin.url,
        token="",
        app_id=None,
        app_private_key_file="",
        installation_id=None,
        webhook_secret="",
        write_interval=0,
    )
    with pytest.raises(ConfigError, match="token"):
        make_github(settings)


def test_make_github_with_token_talks_to_api_url(github_standin: GitHubStandIn) -> None:
    github_standin.open_pull("acme", "shop")
    settings = GithubSettings(
        api_url=github_standin.url,
        token="test-token-0123456789",
        app_id=None,
        app_private_key_file="",
        installation_id=None,
        webhook_secret="",
        write_interval=0,
    )
    adapter = make_github(settings)
    assert isinstance(adapter, PyGithubAdapter)
    assert adapter.seconds_between_writes == 0
    assert len(listing(adapter.list_open_pulls("acme", "shop")).pulls) == 1
    assert token_requests(github_standin) == []
