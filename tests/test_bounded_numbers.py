"""Numbers a person can type into a URL never reach the database unbounded: 400/404, not 500."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from pullre.accounts import api_tokens
from pullre.accounts import user_accounts as accounts
from pullre.models import Role
from tests.web_fixtures import MakeUser

HUGE = "9223372036854775808"  # one past SQLite's and MySQL's largest integer


@pytest.fixture
def secret(session: Session, make_user: MakeUser) -> str:
    owner = accounts.find_user(session, make_user("scripter", Role.ADMIN))
    assert owner is not None
    _, found = api_tokens.create_token(session, owner, "test")
    session.commit()
    return found


@pytest.mark.parametrize(
    "query",
    [
        f"/api/v1/pulls?page={HUGE}",
        f"/api/v1/pulls?per_page={HUGE}",
        "/api/v1/pulls?page=2147483648",
        f"/api/v1/events?pull={HUGE}",
        f"/api/v1/events?server={HUGE}",
        f"/api/v1/events?page={HUGE}",
        "/api/v1/pulls?page=%EF%BC%91",  # a full-width digit: isdigit() says yes, int() agrees
    ],
)
def test_oversized_numbers_in_the_api_are_a_400(
    client: FlaskClient, secret: str, query: str
) -> None:
    response = client.get(query, headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 400, response.get_data(as_text=True)
    assert "whole number" in response.json["error"]


def test_the_largest_allowed_page_is_an_empty_page_not_an_error(
    client: FlaskClient, secret: str
) -> None:
    response = client.get(
        "/api/v1/pulls?page=2147483647&per_page=200", headers={"Authorization": f"Bearer {secret}"}
    )
    assert response.status_code == 200
    assert response.json["items"] == []


@pytest.mark.parametrize(
    "path",
    [
        f"/?page={HUGE}",
        f"/?repository={HUGE}",
        f"/events/?pull={HUGE}&repository={HUGE}&server={HUGE}&before={HUGE}",
        f"/servers/?per_page={HUGE}",
    ],
)
def test_oversized_numbers_in_page_filters_are_ignored(
    admin_client: FlaskClient, path: str
) -> None:
    assert admin_client.get(path).status_code == 200


@pytest.mark.parametrize(
    "path", [f"/pulls/{HUGE}", f"/pulls/{HUGE}/visit", f"/users/{HUGE}/edit", "/pulls/2147483648"]
)
def test_oversized_ids_in_paths_are_unknown_pages(admin_client: FlaskClient, path: str) -> None:
    assert admin_client.get(path).status_code == 404


def test_oversized_ids_in_api_paths_are_json_404s(client: FlaskClient, secret: str) -> None:
    response = client.get(f"/api/v1/pulls/{HUGE}", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 404
    assert "error" in response.json
