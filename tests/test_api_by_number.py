"""The API by PR number: ``/api/v1/repos/OWNER/NAME/pulls/NUMBER`` beside the id routes."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from pullre.accounts import api_tokens
from pullre.accounts import user_accounts as accounts
from pullre.models import EnvironmentStatus, Role
from tests.page_seeds import add_pull, add_repository, add_server
from tests.web_fixtures import MakeUser


@pytest.fixture
def bearer(session: Session, make_user: MakeUser) -> dict[str, dict[str, str]]:
    headers = {}
    for role in Role:
        owner = accounts.find_user(session, make_user(f"api-{role.value}", role))
        assert owner is not None
        _, secret = api_tokens.create_token(session, owner, "by number")
        headers[role.value] = {"Authorization": f"Bearer {secret}"}
    session.commit()
    return headers


def test_a_pr_is_read_and_acted_on_by_its_number(
    client: FlaskClient, session: Session, bearer: dict[str, dict[str, str]]
) -> None:
    shop, blog = add_repository(session, "acme", "shop"), add_repository(session, "acme", "blog")
    add_pull(session, blog, 1, status=EnvironmentStatus.QUEUED)  # id 1 is not shop's #1
    target = add_pull(
        session, shop, 1, status=EnvironmentStatus.READY, server=add_server(session, 1)
    )
    session.commit()
    member, admin = bearer["member"], bearer["admin"]

    by_number = client.get("/api/v1/repos/acme/shop/pulls/1", headers=member)
    by_id = client.get(f"/api/v1/pulls/{target.id}", headers=member)
    assert by_number.status_code == 200
    assert by_number.json == by_id.json
    assert (by_number.json["repository"], by_number.json["number"]) == ("acme/shop", 1)
    assert client.get("/api/v1/repos/ACME/Shop/pulls/1", headers=member).json["id"] == target.id

    assert (
        client.post("/api/v1/repos/acme/shop/pulls/1/redeploy", headers=member).status_code == 202
    )
    session.refresh(target.environments[-1])
    assert target.environments[-1].deploy_requested_at is not None
    # The same checks as the id routes: role, then whether the action applies now.
    refused = client.post("/api/v1/repos/acme/shop/pulls/1/release", headers=member)
    assert refused.status_code == 403
    released = client.post("/api/v1/repos/acme/shop/pulls/1/release", headers=admin)
    assert released.status_code == 202
    again = client.post("/api/v1/repos/acme/shop/pulls/1/release", headers=admin)
    assert (again.status_code, again.json) == (409, {"error": "#1 is already released"})


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/v1/repos/acme/shop/pulls/2", 404),
        ("GET", "/api/v1/repos/acme/nope/pulls/1", 404),
        ("POST", "/api/v1/repos/acme/shop/pulls/1/explode", 404),
        ("GET", "/api/v1/repos/acme/shop/pulls/1/redeploy", 405),
        ("POST", "/api/v1/repos/acme/shop/pulls/1", 405),
        ("GET", "/api/v1/repos/acme/shop/pulls/9223372036854775808", 404),
    ],
)
def test_unknown_numbers_actions_and_methods_answer_json_errors(
    client: FlaskClient,
    session: Session,
    bearer: dict[str, dict[str, str]],
    method: str,
    path: str,
    status: int,
) -> None:
    add_pull(session, add_repository(session, "acme", "shop"), 1)
    session.commit()
    response = client.open(path, method=method, headers=bearer["admin"])
    assert response.status_code == status
    assert "error" in response.json


def test_the_number_routes_need_a_token(client: FlaskClient, session: Session) -> None:
    add_pull(session, add_repository(session, "acme", "shop"), 1)
    session.commit()
    assert client.get("/api/v1/repos/acme/shop/pulls/1").status_code == 401
    assert client.post("/api/v1/repos/acme/shop/pulls/1/redeploy").status_code == 401
