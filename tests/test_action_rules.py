"""The PR page offers exactly the actions the server accepts: one rule, both sides.

For a PR in every state a person meets, an admin's PR page is read for its enabled action forms,
then each action is tried through the JSON API on a fresh copy of that PR: a form on the page
must be accepted (202), an action missing from the page (or disabled) must be refused (409).
"""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from pullre.accounts import api_tokens
from pullre.accounts import user_accounts as accounts
from pullre.models import EnvironmentStatus, PullRequest, PullRequestState, Role
from tests.page_seeds import add_pull, add_repository, add_server
from tests.web_fixtures import MakeUser, logged_in_client

ACTIONS = ("redeploy", "reset-data", "smoke", "release", "unpark", "wake", "sleep")
S = EnvironmentStatus
CASES = [
    (S.QUEUED, PullRequestState.OPEN, False),
    (S.PROVISIONING, PullRequestState.OPEN, False),
    (S.DEPLOYING, PullRequestState.OPEN, False),
    (S.READY, PullRequestState.OPEN, False),
    (S.FAILED, PullRequestState.OPEN, False),
    (S.SLEEPING, PullRequestState.OPEN, False),
    (S.RELEASING, PullRequestState.OPEN, True),
    (S.RELEASING, PullRequestState.CLOSED, False),
    (S.RELEASED, PullRequestState.OPEN, True),
    (S.RELEASED, PullRequestState.MERGED, False),
    (None, PullRequestState.OPEN, False),
]


@pytest.fixture
def admin(app: Flask, session: Session, make_user: MakeUser) -> tuple[FlaskClient, str]:
    name = make_user("ops", Role.ADMIN)
    owner = accounts.find_user(session, name)
    assert owner is not None
    _, secret = api_tokens.create_token(session, owner, "rules")
    session.commit()
    return logged_in_client(app, name), secret


def seed(
    session: Session,
    number: int,
    status: EnvironmentStatus | None,
    state: PullRequestState,
    parked: bool,
) -> PullRequest:
    repo = add_repository(session, name=f"shop{number}")
    on_server = status not in {None, S.QUEUED, S.RELEASED}
    server = add_server(session, number) if on_server else None
    pull = add_pull(session, repo, number, status=status, server=server, parked=parked)
    pull.state = state
    session.commit()
    return pull


def offered(client: FlaskClient, pull: PullRequest) -> set[str]:
    page = client.get(f"/pulls/{pull.id}").get_data(as_text=True)
    return set(re.findall(rf'<form method="post" action="/pulls/{pull.id}/([a-z-]+)"', page))


@pytest.mark.parametrize(("status", "state", "parked"), CASES)
def test_the_page_offers_exactly_what_the_server_accepts(
    admin: tuple[FlaskClient, str],
    session: Session,
    status: EnvironmentStatus | None,
    state: PullRequestState,
    parked: bool,
) -> None:
    client, secret = admin
    shown = offered(client, seed(session, 1, status, state, parked)) & set(ACTIONS)
    accepted = set()
    for number, action in enumerate(ACTIONS, start=2):
        pull = seed(session, number, status, state, parked)
        response = client.post(
            f"/api/v1/pulls/{pull.id}/{action}", headers={"Authorization": f"Bearer {secret}"}
        )
        assert response.status_code in {202, 409}, (action, response.json)
        if response.status_code == 202:
            accepted.add(action)
    assert shown == accepted
    if status is S.READY:  # the grid is not vacuous: a ready PR offers all of these
        assert shown == {"redeploy", "reset-data", "smoke", "release", "sleep"}


def test_a_closed_pr_offers_neither_release_nor_redeploy(
    admin: tuple[FlaskClient, str], session: Session
) -> None:
    client, _ = admin
    pull = seed(session, 40, S.RELEASING, PullRequestState.CLOSED, False)
    page = client.get(f"/pulls/{pull.id}").get_data(as_text=True)
    assert f'action="/pulls/{pull.id}/release"' not in page
    assert (
        '<button type="button" disabled aria-describedby="why-redeploy">Redeploy</button>' in page
    )
    assert "#40 is being released" in page


def test_a_queued_pr_says_why_it_cannot_be_redeployed_yet(
    admin: tuple[FlaskClient, str], session: Session
) -> None:
    client, _ = admin
    pull = seed(session, 41, S.QUEUED, PullRequestState.OPEN, False)
    page = client.get(f"/pulls/{pull.id}").get_data(as_text=True)
    assert 'id="why-redeploy">#41 has no server to redeploy on</small>' in page
    assert 'id="why-reset_data">#41 waits for a server; its data is cloned when it gets one' in page
