"""Fork and outsider PRs wait for a maintainer's approval of their exact head sha.

Real parts throughout: the GitHub stand-in over HTTP through PyGithub (forks, deleted forks and
``author_association`` as GitHub sends them), moto's EC2 server behind the fault proxy (which
counts every StartInstances that reached EC2), and a real MariaDB for the PR schemas.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest
from sqlalchemy import make_url, select
from sqlalchemy.orm import Session

from pullre.clock import system_clock
from pullre.environments import deploys
from pullre.models import (
    Approvers,
    Event,
    PullRequest,
    Repository,
    Role,
    Server,
    Trust,
    User,
)
from pullre.reconcile.run import PassReport
from pullre.reconcile.sync import apply_pull
from pullre.staging_db.database import PyMysqlStagingDatabase
from pullre.trust import approval
from tests.ec2_fixtures import FaultyEc2
from tests.reconcile_fixtures import NAME, OWNER, World


@pytest.fixture
def staging(mysql_server_url: str) -> PyMysqlStagingDatabase:
    return PyMysqlStagingDatabase.from_url(mysql_server_url)


def _sql(url: str, statement: str) -> None:
    parts = make_url(url)
    connection = pymysql.connect(
        host=parts.host, port=parts.port or 3306, user=parts.username,
        password=parts.password or "", autocommit=True,
    )  # fmt: skip
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement)
    finally:
        connection.close()


@pytest.fixture
def repository(
    world: World, staging: PyMysqlStagingDatabase, mysql_server_url: str
) -> Iterator[int]:
    """acme/shop with a random id, so its PR schemas (``pr_<id>_<n>``) are this test's own,
    and an empty base schema of its own to clone them from."""
    base = f"shop_base_{secrets.token_hex(4)}"
    _sql(mysql_server_url, f"CREATE DATABASE `{base}`")
    repository_id = world.add_repository(id=secrets.randbelow(10**8) + 10**8, base_schema=base)
    yield repository_id
    for left in staging.leftovers(f"pr_{repository_id}_"):
        staging.drop(left.name)
    _sql(mysql_server_url, f"DROP DATABASE IF EXISTS `{base}`")


def _pass(world: World, faulty: FaultyEc2, staging: PyMysqlStagingDatabase) -> PassReport:
    report = world.run(faulty.adapter, staging=staging)
    assert report.errors == []
    return report


def _person(world: World, role: Role) -> str:
    username = f"{role.value}-{secrets.token_hex(3)}"
    with world.sessions() as session:
        session.add(User(username=username, password_hash="x", role=role))
        session.commit()
    return username


def _approve(world: World, number: int, sha: str, username: str) -> None:
    with world.sessions() as session:
        user = session.scalars(select(User).where(User.username == username)).one()
        pull = _pull(session, number)
        approval.approve(session, pull, sha, user=user, clock=system_clock)
        session.commit()


def _pull(session: Session, number: int) -> PullRequest:
    return session.scalars(
        select(PullRequest)
        .join(PullRequest.repository)
        .where(PullRequest.number == number, Repository.name == NAME)
    ).one()


def _assignment(world: World, instance_id: str) -> dict[str, Any] | None:
    with world.sessions() as session:
        server = session.scalars(select(Server).where(Server.instance_id == instance_id)).one()
        return deploys.assignment(
            session, server, staging_mysql_url="", secret_key="", github_api_url=world.standin.url
        )


def test_fork_and_outsider_prs_wait_with_no_server_no_schema_and_no_start(
    world: World, faulty_ec2: FaultyEc2, staging: PyMysqlStagingDatabase, repository: int
) -> None:
    world.add_servers(3)
    fork = world.standin.open_pull(OWNER, NAME, fork_owner="mallory")
    outsider = world.standin.open_pull(OWNER, NAME, author_association="CONTRIBUTOR")
    gone = world.standin.open_pull(OWNER, NAME, fork_owner="eve")
    world.standin.delete_fork(OWNER, NAME, gone)  # GitHub sends head.repo: null

    for _ in range(2):
        report = _pass(world, faulty_ec2, staging)
        assert (report.assigned, report.started) == ([], [])
    assert world.environments() == {}
    assert faulty_ec2.proxy.forwarded("StartInstances") == {}
    assert staging.leftovers(f"pr_{repository}_") == []
    with world.sessions() as session:
        seen = {p.number: (p.from_fork, p.author_association) for p in session.scalars(
            select(PullRequest))}  # fmt: skip
        assert seen == {
            fork: (True, "COLLABORATOR"),
            outsider: (False, "CONTRIBUTOR"),
            gone: (True, "COLLABORATOR"),
        }
    waiting = world.events("awaiting_approval")
    assert len(waiting) == 3  # once per PR and sha, not once per pass
    assert all("waits for an admin of pullre to approve it" in m for m in waiting)


def test_a_collaborators_pr_deploys_as_before(
    world: World, faulty_ec2: FaultyEc2, staging: PyMysqlStagingDatabase, repository: int
) -> None:
    (server,) = world.add_servers(1)
    own = world.standin.open_pull(OWNER, NAME, author_association="MEMBER")
    _pass(world, faulty_ec2, staging)
    assert world.active() == {own: ("provisioning", server)}
    assert faulty_ec2.proxy.forwarded("StartInstances") == {server: 1}
    assert world.events("awaiting_approval") == []


def test_everyone_trust_deploys_forks_without_approval(
    world: World, faulty_ec2: FaultyEc2, staging: PyMysqlStagingDatabase, repository: int
) -> None:
    with world.sessions() as session:
        found = session.get(Repository, repository)
        assert found is not None
        found.trust = Trust.EVERYONE
        session.commit()
    (server,) = world.add_servers(1)
    fork = world.standin.open_pull(OWNER, NAME, fork_owner="mallory", author_association="NONE")
    _pass(world, faulty_ec2, staging)
    assert world.active() == {fork: ("provisioning", server)}


def test_approval_runs_that_sha_only_and_a_push_makes_the_pr_wait_again(
    world: World, faulty_ec2: FaultyEc2, staging: PyMysqlStagingDatabase, repository: int
) -> None:
    (server,) = world.add_servers(1)
    admin = _person(world, Role.ADMIN)
    fork = world.standin.open_pull(OWNER, NAME, fork_owner="mallory")
    sha_a = world.standin.pull(OWNER, NAME, fork).head_sha
    _pass(world, faulty_ec2, staging)
    assert world.environments() == {}

    _approve(world, fork, sha_a, admin)
    _pass(world, faulty_ec2, staging)
    assert world.active() == {fork: ("provisioning", server)}
    assert _assignment(world, server) is not None
    assert (_assignment(world, server) or {})["head_sha"] == sha_a
    with world.sessions() as session:
        row = session.scalars(select(Event).where(Event.kind == "approved")).one()
        assert row.details == {"actor": admin, "head_sha": sha_a}
        assert row.pull_request_id == _pull(session, fork).id

    # A push, as the webhook records it, before any pass: the agent is told to run nothing.
    sha_b = world.standin.push(OWNER, NAME, fork)
    with world.sessions() as session:
        info = world.github.get_pull(OWNER, NAME, fork)
        apply_pull(session, _pull(session, fork).repository, info, system_clock)
        session.commit()
    assert _assignment(world, server) is None
    with world.sessions() as session:
        assert _pull(session, fork).approved_sha is None
    assert world.events("approval_dropped") == [
        f"#{fork} moved to {sha_b[:7]}: the approval of {sha_a[:7]} by {admin} no longer applies"
    ]

    # The next pass gives the server back and starts nothing for sha B.
    _pass(world, faulty_ec2, staging)
    assert world.active() == {fork: ("releasing", server)}
    assert faulty_ec2.proxy.forwarded("StartInstances") == {server: 1}
    assert any("waits for a maintainer's approval" in m for m in world.events("releasing"))

    # An approval of the old sha is refused; the new one lets it run again.
    with pytest.raises(approval.StaleSha):
        _approve(world, fork, sha_a, admin)
    _approve(world, fork, sha_b, admin)
    for _ in range(3):
        _pass(world, faulty_ec2, staging)
    assert world.active()[fork][0] == "provisioning"
    assert (_assignment(world, world.active()[fork][1] or "") or {})["head_sha"] == sha_b


def test_members_approve_only_where_the_repository_allows_it(
    world: World, faulty_ec2: FaultyEc2, staging: PyMysqlStagingDatabase, repository: int
) -> None:
    member = _person(world, Role.MEMBER)
    fork = world.standin.open_pull(OWNER, NAME, fork_owner="mallory")
    sha = world.standin.pull(OWNER, NAME, fork).head_sha
    _pass(world, faulty_ec2, staging)
    with pytest.raises(approval.NotAllowed, match="only an admin of pullre may approve"):
        _approve(world, fork, sha, member)
    assert world.events("approved") == []

    with world.sessions() as session:
        found = session.get(Repository, repository)
        assert found is not None
        found.approvers = Approvers.MEMBERS
        session.commit()
    _approve(world, fork, sha, member)
    assert world.events("approved") == [f"#{fork}: {sha[:12]} approved by {member}"]


def test_a_trusted_prs_approval_is_refused_as_needless(
    world: World, faulty_ec2: FaultyEc2, staging: PyMysqlStagingDatabase, repository: int
) -> None:
    admin = _person(world, Role.ADMIN)
    own = world.standin.open_pull(OWNER, NAME, author_association="OWNER")
    _pass(world, faulty_ec2, staging)
    with pytest.raises(approval.ApprovalRefused, match="needs no approval"):
        _approve(world, own, world.standin.pull(OWNER, NAME, own).head_sha, admin)
