"""Lifting a scenario's gate from a PR: only admins and the scenario's owner, never the PR's
author, always an event, and ``pullre/acceptance`` stays (pending) after the next push."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from pullre.clock import system_clock
from pullre.github.adapter import PyGithubAdapter
from pullre.github.standin.server import GitHubStandIn
from pullre.models import (
    EnvironmentStatus,
    Event,
    PullRequest,
    Role,
    Scenario,
    ScenarioAttachment,
    User,
)
from pullre.reporting.pass_report import report_changes
from pullre.scenarios import acceptance as scenarios
from tests.page_seeds import add_pull, add_repository, add_server
from tests.web_fixtures import MakeUser, csrf_token, logged_in_client

STEPS = [{"action": "Open the cart", "expected": "It is empty"}]


def seed(session: Session, owner: str, *, labels: list[str] | None = None) -> tuple[int, int]:
    """PR acme/gate#7 by ``alice`` with a scenario of ``owner`` attached by hand: (pr, scenario)."""
    repo = add_repository(session, "acme", "gate")
    pull = add_pull(session, repo, 7, status=EnvironmentStatus.READY, server=add_server(session, 7))
    pull.author_login = "alice"
    pull.labels = labels or []
    owner_id = session.scalar(select(User.id).where(User.username == owner))
    scenario = Scenario(title="Pay", steps=STEPS, labels=labels or [], owner_id=owner_id)
    session.add(scenario)
    session.flush()
    if not labels:
        scenarios.attach(session, pull, scenario, owner)
    session.commit()
    return pull.id, scenario.id


def detach(client: FlaskClient, pull_id: int, scenario_id: int) -> int:
    token = csrf_token(client, "/scenarios/new")
    path = f"/pulls/{pull_id}/scenarios/{scenario_id}/detach"
    return client.post(path, data={"csrf_token": token}).status_code


def detached_events(session: Session) -> list[tuple[int | None, str, int]]:
    session.expire_all()
    return [
        (event.pull_request_id, event.details["actor"], event.details["number"])
        for event in session.scalars(select(Event).where(Event.kind == "scenario.detached"))
    ]


def attachments(session: Session) -> int:
    session.expire_all()
    return len(session.scalars(select(ScenarioAttachment)).all())


def test_the_pr_author_and_other_members_get_403_and_nothing_changes(
    app: Flask, session: Session, make_user: MakeUser
) -> None:
    make_user("owner")
    pull_id, scenario_id = seed(session, "owner")
    alice = logged_in_client(app, make_user("alice"))  # the PR's author, by GitHub login
    bob = logged_in_client(app, make_user("bob"))
    assert detach(alice, pull_id, scenario_id) == 403
    assert detach(bob, pull_id, scenario_id) == 403
    assert attachments(session) == 1
    assert detached_events(session) == []
    page = alice.get(f"/pulls/{pull_id}/scenarios").get_data(as_text=True)
    assert f"/scenarios/{scenario_id}/detach" not in page  # not offered where refused


def test_an_admin_who_is_the_author_is_still_refused(
    app: Flask, session: Session, make_user: MakeUser
) -> None:
    make_user("owner")
    pull_id, scenario_id = seed(session, "owner")
    alice = logged_in_client(app, make_user("alice", Role.ADMIN))
    assert detach(alice, pull_id, scenario_id) == 403
    assert attachments(session) == 1


def test_the_owner_and_an_admin_detach_and_an_event_says_who_and_which_pr(
    app: Flask, session: Session, make_user: MakeUser
) -> None:
    make_user("owner")
    pull_id, scenario_id = seed(session, "owner")
    owner = logged_in_client(app, "owner")
    assert detach(owner, pull_id, scenario_id) == 302
    assert attachments(session) == 0
    assert detached_events(session) == [(pull_id, "owner", 7)]
    admin = logged_in_client(app, make_user("boss", Role.ADMIN))
    pull, scenario = session.get(PullRequest, pull_id), session.get(Scenario, scenario_id)
    assert pull is not None
    assert scenario is not None
    scenarios.attach(session, pull, scenario, "x")
    session.commit()
    assert detach(admin, pull_id, scenario_id) == 302
    assert detached_events(session) == [(pull_id, "owner", 7), (pull_id, "boss", 7)]


def test_removing_the_label_that_attached_it_is_recorded_and_refused_to_the_author(
    app: Flask, session: Session, make_user: MakeUser
) -> None:
    make_user("alice")
    pull_id, scenario_id = seed(session, "alice", labels=["billing"])
    alice = logged_in_client(app, "alice")  # owns the scenario and opened the PR
    path = f"/scenarios/{scenario_id}/edit"
    data = {"title": "Pay", "labels": "", "steps": "1. Open the cart\nExpected: It is empty"}
    response = alice.post(path, data={**data, "csrf_token": csrf_token(alice, path)})
    assert response.status_code == 403
    session.expire_all()
    assert session.get(Scenario, scenario_id).labels == ["billing"]  # type: ignore[union-attr]
    admin = logged_in_client(app, make_user("boss", Role.ADMIN))
    response = admin.post(path, data={**data, "csrf_token": csrf_token(admin, path)})
    assert response.status_code == 302
    assert detached_events(session) == [(pull_id, "boss", 7)]


def acceptance_statuses(standin: GitHubStandIn) -> list[tuple[str, str]]:
    return [
        (s["state"], s["sha"])
        for s in reversed(standin.repo("acme", "gate").commit_statuses)
        if s["context"] == "pullre/acceptance"
    ]


def test_after_a_detach_and_a_push_acceptance_is_pending_not_silent(
    app: Flask,
    session: Session,
    session_factory: sessionmaker[Session],
    make_user: MakeUser,
    github_standin: GitHubStandIn,
    github: PyGithubAdapter,
) -> None:
    make_user("owner")
    pull_id, scenario_id = seed(session, "owner")
    pull = session.get(PullRequest, pull_id)
    assert pull is not None
    github_standin.open_pull("acme", "gate", author="alice", head_sha=pull.head_sha)
    # Detached before anything was ever reported: the event alone is the memory of the gate.
    assert detach(logged_in_client(app, "owner"), pull_id, scenario_id) == 302
    session.expire_all()
    pull.head_sha = "d" * 40
    session.commit()
    report_changes(session_factory, github, public_url="https://p.example", clock=system_clock)
    statuses = acceptance_statuses(github_standin)
    assert statuses == [("pending", "d" * 40)]
    found = [
        s for s in github_standin.repo("acme", "gate").commit_statuses
        if s["context"] == "pullre/acceptance"
    ]  # fmt: skip
    assert "detached" in found[0]["description"]
    assert len(found[0]["description"]) <= 140


def test_a_pr_never_gated_gets_no_acceptance_status(
    session: Session,
    session_factory: sessionmaker[Session],
    github_standin: GitHubStandIn,
    github: PyGithubAdapter,
) -> None:
    repo = add_repository(session, "acme", "gate")
    pull = add_pull(session, repo, 7, status=EnvironmentStatus.READY, server=add_server(session, 7))
    session.commit()
    github_standin.open_pull("acme", "gate", author="alice", head_sha=pull.head_sha)
    report_changes(session_factory, github, public_url="https://p.example", clock=system_clock)
    assert acceptance_statuses(github_standin) == []


def test_deleting_a_gating_scenario_is_refused_to_the_author_and_recorded(
    app: Flask, session: Session, make_user: MakeUser
) -> None:
    make_user("alice")
    pull_id, scenario_id = seed(session, "alice", labels=["billing"])
    alice = logged_in_client(app, "alice")
    token = csrf_token(alice, "/scenarios/new")
    path = f"/scenarios/{scenario_id}/delete"
    assert alice.post(path, data={"csrf_token": token}).status_code == 403
    assert detached_events(session) == []
    admin = logged_in_client(app, make_user("boss", Role.ADMIN))
    token = csrf_token(admin, "/scenarios/new")
    assert admin.post(path, data={"csrf_token": token}).status_code == 302
    session.expire_all()
    assert session.get(Scenario, scenario_id) is None
    assert detached_events(session) == [(pull_id, "boss", 7)]
