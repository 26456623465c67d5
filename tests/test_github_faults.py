"""Broken answers from GitHub or the proxies before it: HTML error pages, truncated JSON, shapes
missing keys, over-long descriptions. Each becomes the right ``GitHubError`` with a short
message, never an escaped ``JSONDecodeError``/``KeyError``, and a pass carries on without it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import select

from pullre.github.adapter import PyGithubAdapter, make_github
from pullre.github.port import (
    GitHubAuthError,
    GitHubError,
    GitHubNotFound,
    GitHubRateLimited,
    GitHubUnavailable,
)
from pullre.github.standin.faults import FaultBody
from pullre.github.standin.server import GitHubStandIn
from pullre.models import Event
from tests.github_fixtures import GITHUB_TOKEN
from tests.reconcile_fixtures import NAME, OWNER, World
from tests.test_github import app_settings, make_app_key

PULLS = rf"/repos/{OWNER}/{NAME}/pulls$"


@pytest.mark.parametrize(
    ("status", "kind", "words"),
    [
        (502, GitHubUnavailable, "Unicorn! · GitHub"),
        (504, GitHubUnavailable, "504 Gateway Timeout"),
        (500, GitHubUnavailable, "Unicorn! · GitHub"),
        (403, GitHubAuthError, "403 Forbidden"),
        (401, GitHubAuthError, "401 Unauthorized"),
        (404, GitHubNotFound, "404 Not Found"),
    ],
)
def test_an_html_error_page_becomes_the_error_of_its_status(
    github_standin: GitHubStandIn,
    github: PyGithubAdapter,
    status: int,
    kind: type[GitHubError],
    words: str,
) -> None:
    github_standin.create_repo(OWNER, NAME)
    github_standin.fail_next(3, status, body="html", path=PULLS)  # GETs retry 5xx twice

    with pytest.raises(GitHubError) as caught:
        github.list_open_pulls(OWNER, NAME)

    assert type(caught.value) is kind
    assert caught.value.status == status
    message = str(caught.value)
    assert words in message
    assert "<" not in message, message
    assert len(message) < 200, message


def test_an_html_403_with_rate_limit_headers_is_rate_limited(
    github_standin: GitHubStandIn, github: PyGithubAdapter
) -> None:
    github_standin.create_repo(OWNER, NAME)
    github_standin.rate_remaining = 0  # the stand-in's own 403 carries X-RateLimit-Remaining: 0
    github_standin.fail_next(1, 403, body="html", path=PULLS)

    with pytest.raises(GitHubRateLimited):
        github.list_open_pulls(OWNER, NAME)


def test_truncated_json_is_unavailable_not_a_decode_error(
    github_standin: GitHubStandIn, github: PyGithubAdapter
) -> None:
    github_standin.create_repo(OWNER, NAME)
    github_standin.fail_next(1, 200, body="truncated", path=PULLS)

    with pytest.raises(GitHubUnavailable, match="not JSON") as caught:
        github.list_open_pulls(OWNER, NAME)
    assert caught.value.status == 200
    assert github.list_open_pulls(OWNER, NAME) is not None  # the next answer is whole again


def test_a_truncated_error_answer_keeps_its_status_meaning(
    github_standin: GitHubStandIn, github: PyGithubAdapter
) -> None:
    number = github_standin.open_pull(OWNER, NAME)
    github_standin.fail_next(1, 404, body="truncated", path=rf"/pulls/{number}$")

    with pytest.raises(GitHubNotFound):
        github.get_pull(OWNER, NAME, number)


def test_a_shape_missing_keys_is_a_github_error(
    github_standin: GitHubStandIn, github: PyGithubAdapter
) -> None:
    """A proxy answering 200 with JSON of its own: no ``number``, no ``head``."""
    github_standin.create_repo(OWNER, NAME)
    github_standin.fail_next(1, 200, body="json", path=PULLS)  # {"message": "OK", ...}

    with pytest.raises(GitHubError, match="unexpected answer"):
        github.list_open_pulls(OWNER, NAME)

    number = github_standin.open_pull(OWNER, NAME)
    github_standin.fail_next(1, 200, body="json", path=rf"/pulls/{number}$")
    with pytest.raises(GitHubError, match=r"unexpected answer.*head"):
        github.get_pull(OWNER, NAME, number)


def test_faults_on_a_chosen_route_leave_other_routes_alone(
    github_standin: GitHubStandIn, github: PyGithubAdapter
) -> None:
    github_standin.create_repo(OWNER, "blog")
    github_standin.open_pull(OWNER, NAME)
    github_standin.fail_next(3, 502, body="html", path=PULLS)

    blog = github.list_open_pulls(OWNER, "blog")
    assert blog is not None
    with pytest.raises(GitHubUnavailable):
        github.list_open_pulls(OWNER, NAME)
    statuses = [(r.path, r.status) for r in github_standin.requests]
    assert (
        statuses
        == [(f"/repos/{OWNER}/blog/pulls", 200)] + [(f"/repos/{OWNER}/{NAME}/pulls", 502)] * 3
    )


def test_a_pass_finishes_for_other_repositories_when_one_answers_an_html_502(
    world: World,
) -> None:
    broken = world.add_repository(OWNER, "broken")
    world.add_repository()
    world.add_servers(1)
    one = world.standin.open_pull(OWNER, NAME)
    world.standin.open_pull(OWNER, "broken")
    world.standin.fail_next(3, 502, body="html", path=rf"/repos/{OWNER}/broken/pulls$")

    report = world.run()

    assert len(report.errors) == 1, report.errors
    assert f"{OWNER}/broken" in report.errors[0]
    assert "Unicorn!" in report.errors[0]
    assert set(world.active()) == {one}
    with world.sessions() as session:
        recorded = session.execute(
            select(Event.repository_id, Event.message).where(Event.kind == "error")
        ).all()
    assert [repository for repository, _ in recorded] == [broken]
    assert "<html" not in recorded[0][1].lower()


def post_status(standin: GitHubStandIn, path: str, body: dict[str, str]) -> tuple[int, object]:
    request = urllib.request.Request(
        standin.url + path,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"token {GITHUB_TOKEN}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_the_standin_refuses_a_description_over_140_characters_as_github_does(
    github_standin: GitHubStandIn,
) -> None:
    number = github_standin.open_pull(OWNER, NAME)
    sha = github_standin.pull(OWNER, NAME, number).head_sha
    path = f"/repos/{OWNER}/{NAME}/statuses/{sha}"

    status, body = post_status(github_standin, path, {"state": "success", "description": "x" * 141})
    assert status == 422
    assert isinstance(body, dict)
    assert body["errors"][0]["message"] == "description is too long (maximum is 140 characters)"
    assert (
        post_status(github_standin, path, {"state": "success", "description": "x" * 140})[0] == 201
    )


def test_long_descriptions_are_cut_to_140_characters(
    github_standin: GitHubStandIn, github: PyGithubAdapter
) -> None:
    number = github_standin.open_pull(OWNER, NAME)
    sha = github_standin.pull(OWNER, NAME, number).head_sha
    long = "Released by pullre: " + "the PR's author asked for the server back " * 10
    deployment = github.create_deployment(OWNER, NAME, ref=sha, environment=f"pr-{number}")

    github.create_deployment_status(OWNER, NAME, deployment.id, state="inactive", description=long)
    github.create_commit_status(
        OWNER, NAME, sha, state="failure", context="pullre/deploy", description=long
    )

    repo = github_standin.repo(OWNER, NAME)
    sent = [repo.deployment_statuses[deployment.id][0]["description"]]
    sent.append(repo.commit_statuses[0]["description"])
    for description in sent:
        assert len(description) == 140
        assert description.endswith("…")
        assert description.startswith("Released by pullre: the PR's author")


@pytest.mark.parametrize(
    ("status", "body", "kind", "words"),
    [
        (502, "html", GitHubUnavailable, "Unicorn!"),
        (403, "html", GitHubAuthError, "403 Forbidden"),
        (201, "truncated", GitHubUnavailable, "installation token"),
    ],
)
def test_a_broken_installation_token_answer_is_a_github_error(
    github_standin: GitHubStandIn,
    tmp_path: Path,
    status: int,
    body: FaultBody,
    kind: type[GitHubError],
    words: str,
) -> None:
    """PyGithub fetches the App's installation token itself; its broken answers too must come
    out as pullre's errors, not as PyGithub's exceptions or a JSONDecodeError."""
    key_file, public_pem = make_app_key(tmp_path)
    github_standin.register_app(42, public_pem, installation_id=7)
    github_standin.create_repo(OWNER, NAME)
    github_standin.fail_next(3, status, body=body, path=r"/access_tokens$")
    adapter = make_github(app_settings(github_standin.url, key_file))
    try:
        with pytest.raises(GitHubError) as caught:
            adapter.list_open_pulls(OWNER, NAME)
        assert type(caught.value) is kind
        assert words in str(caught.value)
        assert "<" not in str(caught.value)
    finally:
        adapter.close()
