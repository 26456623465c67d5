"""What a PR waiting for approval tells GitHub: whole passes, the stand-in over HTTP, moto."""

from __future__ import annotations

from sqlalchemy import select

from pullre.clock import system_clock
from pullre.models import Approvers, PullRequest, Repository, Role, User
from pullre.trust import approval
from tests.reconcile_fixtures import NAME, OWNER, World
from tests.test_reporting import PUBLIC, run


def the_comment(world: World, number: int) -> str:
    (comment,) = world.standin.repo(OWNER, NAME).comments.get(number, [])
    body: str = comment["body"]
    return body


def test_the_comment_and_check_say_who_must_approve_which_commit(world: World) -> None:
    repository_id = world.add_repository()
    world.add_servers(1)
    number = world.standin.open_pull(
        OWNER, NAME, fork_owner="mallory", title="@everyone <b>urgent</b>", author="mallory"
    )
    sha = world.standin.pull(OWNER, NAME, number).head_sha
    assert run(world).errors == []

    with world.sessions() as session:
        pull_id = session.scalars(select(PullRequest.id)).one()
    body = the_comment(world, number)
    assert "**Staging environment:** waiting for a maintainer's approval" in body
    assert (
        f"none of its code runs and it gets no server or database until an admin of pullre "
        f"approves commit {sha} on <{PUBLIC}/pulls/{pull_id}>. A push needs a new approval."
    ) in body
    # Nothing of the PR's own text (title, author) is echoed.
    assert "mallory" not in body
    assert "everyone" not in body
    repo = world.standin.repo(OWNER, NAME)
    assert repo.deployments == []
    assert [(s["state"], s["description"]) for s in repo.commit_statuses] == [
        ("pending", f"Waiting for a maintainer's approval of {sha[:7]}")
    ]

    # Unchanged: nothing is sent again. Members may approve: the comment says so.
    run(world)
    assert len(repo.commit_statuses) == 1
    with world.sessions() as session:
        found = session.get(Repository, repository_id)
        assert found is not None
        found.approvers = Approvers.MEMBERS
        session.add(User(username="ann", password_hash="x", role=Role.MEMBER))
        session.commit()
    run(world)
    assert "until an admin or member of pullre approves" in the_comment(world, number)

    # Approved: the PR is queued at once and the comment moves on.
    with world.sessions() as session:
        pull = session.scalars(select(PullRequest)).one()
        user = session.scalars(select(User).where(User.username == "ann")).one()
        approval.approve(session, pull, sha, user=user, clock=system_clock)
        session.commit()
    run(world)
    body = the_comment(world, number)
    assert "approval" not in body.lower()
    assert "**Staging environment:** starting a staging server" in body
