"""Reporting calls (deployments, comments, commit statuses) through the adapter to the stand-in."""

from __future__ import annotations

import pytest

from pullre.github.adapter import PyGithubAdapter
from pullre.github.port import GitHubError
from pullre.github.standin.server import GitHubStandIn


def test_deployment_and_its_statuses(
    github_standin: GitHubStandIn, github: PyGithubAdapter
) -> None:
    number = github_standin.open_pull("acme", "shop", head_ref="fix-cart")
    sha = github_standin.pull("acme", "shop", number).head_sha

    deployment = github.create_deployment(
        "acme", "shop", ref="fix-cart", environment="pr-1", description="staging for #1"
    )
    status = github.create_deployment_status(
        "acme", "shop", deployment.id, state="success",
        environment_url="http://pr-1.staging.example", log_url="http://ctl/pr/1",
    )  # fmt: skip

    assert (deployment.sha, deployment.environment, deployment.ref) == (sha, "pr-1", "fix-cart")
    assert (status.state, status.deployment_id) == ("success", deployment.id)
    assert status.environment_url == "http://pr-1.staging.example"
    stored = github_standin.repo("acme", "shop")
    assert stored.deployments[0]["transient_environment"] is True
    assert stored.deployments[0]["production_environment"] is False
    assert stored.deployment_statuses[deployment.id][0]["log_url"] == "http://ctl/pr/1"


def test_deployment_of_unknown_ref_is_refused(
    github_standin: GitHubStandIn, github: PyGithubAdapter
) -> None:
    github_standin.create_repo("acme", "shop")
    with pytest.raises(GitHubError) as caught:
        github.create_deployment("acme", "shop", ref="nope", environment="pr-9")
    assert caught.value.status == 422


def test_comment_is_created_listed_and_edited_in_place(
    github_standin: GitHubStandIn, github: PyGithubAdapter
) -> None:
    number = github_standin.open_pull("acme", "shop")
    created = github.create_comment("acme", "shop", number, "Queued (position 2)")

    edited = github.edit_comment("acme", "shop", created.id, "Ready: http://pr-1.staging")
    listed = github.list_issue_comments("acme", "shop", number)

    assert created.author_login == "pullre-bot"
    assert edited.id == created.id
    assert [(c.id, c.body) for c in listed] == [(created.id, "Ready: http://pr-1.staging")]


def test_comments_listing_follows_pages(
    github_standin: GitHubStandIn, github: PyGithubAdapter
) -> None:
    number = github_standin.open_pull("acme", "shop")
    for i in range(120):
        github.create_comment("acme", "shop", number, f"note {i}")

    listed = github.list_issue_comments("acme", "shop", number)

    assert [c.body for c in listed] == [f"note {i}" for i in range(120)]


def test_commit_status_is_stored_for_the_sha(
    github_standin: GitHubStandIn, github: PyGithubAdapter
) -> None:
    number = github_standin.open_pull("acme", "shop")
    sha = github_standin.pull("acme", "shop", number).head_sha

    status = github.create_commit_status(
        "acme", "shop", sha, state="pending", context="pullre/deploy",
        description="x" * 200, target_url="http://ctl/pr/1",
    )  # fmt: skip

    assert (status.state, status.context) == ("pending", "pullre/deploy")
    assert len(status.description) == 140, "GitHub caps descriptions; we trim instead of failing"
    (stored,) = github_standin.repo("acme", "shop").commit_statuses
    assert (stored["sha"], stored["target_url"]) == (sha, "http://ctl/pr/1")
