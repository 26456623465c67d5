"""Every page is private by default; admins and members get what their role allows; CSRF holds."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from pullre.models import GithubUser, Repository, Role, User
from pullre.web.auth import PUBLIC_ENDPOINTS, TOKEN_BLUEPRINTS
from tests.web_fixtures import PASSWORD, MakeUser, csrf_token, log_in

ADMIN_BLUEPRINTS = {"repositories", "github_users", "users"}


def concrete_paths(app: Flask) -> list[tuple[str, str, str]]:
    """(endpoint, method, path) for every route, with id 1 filled into URL parameters."""
    routes = []
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:int:)?[^>]+>", "1", rule.rule)
        routes.extend(
            (rule.endpoint, method, path) for method in rule.methods - {"HEAD", "OPTIONS"}
        )
    return routes


def test_every_private_route_refuses_anonymous_requests(app: Flask, client: FlaskClient) -> None:
    private = [
        r
        for r in concrete_paths(app)
        if r[0] not in PUBLIC_ENDPOINTS and r[0].split(".")[0] not in TOKEN_BLUEPRINTS
    ]
    assert len(private) >= 10  # the test would pass vacuously if routes went missing
    for endpoint, method, path in private:
        response = client.open(path, method=method)
        assert response.status_code == 302, (endpoint, method, path)
        assert response.location.startswith("/login"), (endpoint, method, path)


def test_token_apis_refuse_requests_without_their_token(app: Flask, client: FlaskClient) -> None:
    routes = [r for r in concrete_paths(app) if r[0].split(".")[0] in TOKEN_BLUEPRINTS]
    assert len(routes) >= 3
    for endpoint, method, path in routes:
        response = client.open(path, method=method)
        assert response.status_code == 401, (endpoint, method, path)
        assert "error" in response.json


def test_anonymous_json_requests_get_401(app: Flask, client: FlaskClient) -> None:
    response = client.get("/", headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert response.json == {"error": "authentication required"}


def test_public_routes_answer_without_login(client: FlaskClient) -> None:
    assert client.get("/login").status_code == 200
    assert client.get("/healthz").json == {"status": "ok", "database": "ok"}
    assert client.get("/static/style.css").status_code == 200


def test_members_cannot_reach_admin_pages(app: Flask, member_client: FlaskClient) -> None:
    admin_routes = [r for r in concrete_paths(app) if r[0].split(".")[0] in ADMIN_BLUEPRINTS]
    assert len(admin_routes) >= 12
    token = csrf_token(member_client, "/")
    for endpoint, method, path in admin_routes:
        response = member_client.open(path, method=method, data={"csrf_token": token})
        assert response.status_code == 403, (endpoint, method, path)
    assert member_client.get("/").status_code == 200


def test_admins_reach_admin_pages(admin_client: FlaskClient) -> None:
    for path in ("/repositories/", "/github-users/", "/users/", "/repositories/new"):
        assert admin_client.get(path).status_code == 200, path


def test_a_post_without_csrf_token_is_refused(admin_client: FlaskClient, session: Session) -> None:
    response = admin_client.post("/repositories/new", data={"full_name": "acme/shop"})
    assert response.status_code == 400
    assert "security token" in response.get_data(as_text=True)
    assert session.query(Repository).count() == 0


def test_login_without_csrf_token_is_refused(client: FlaskClient, make_user: MakeUser) -> None:
    make_user("alice")
    response = client.post("/login", data={"username": "alice", "password": "x"})
    assert response.status_code == 400


def test_wrong_password_and_unknown_user_look_the_same(
    client: FlaskClient, make_user: MakeUser
) -> None:
    make_user("alice")
    answers = []
    for username in ("alice", "nobody"):
        token = csrf_token(client, "/login")
        response = client.post(
            "/login", data={"username": username, "password": "wrong-pass", "csrf_token": token}
        )
        answers.append((response.status_code, "Unknown user or wrong password" in response.text))
    assert answers == [(401, True), (401, True)]


def test_inactive_user_cannot_log_in(
    client: FlaskClient, session: Session, make_user: MakeUser
) -> None:
    make_user("alice")
    session.query(User).filter_by(username="alice").update({"active": False})
    session.commit()
    token = csrf_token(client, "/login")
    response = client.post(
        "/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 401


def test_login_does_not_redirect_off_site(client: FlaskClient, make_user: MakeUser) -> None:
    make_user("alice")
    for target, expected in (
        ("https://evil.example/", "/"),
        ("//evil.example", "/"),
        ("/users/", "/users/"),
    ):
        client.get("/login")
        token = csrf_token(client, "/login")
        response = client.post(
            f"/login?next={target}",
            data={"username": "alice", "password": PASSWORD, "csrf_token": token},
        )
        assert response.location == expected
        client.post("/logout", data={"csrf_token": csrf_token(client, "/")})


def test_logout_ends_the_session(admin_client: FlaskClient) -> None:
    token = csrf_token(admin_client, "/")
    assert admin_client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert admin_client.get("/").status_code == 302


def test_a_deactivated_user_is_logged_out_on_the_next_request(
    app: Flask, session: Session, make_user: MakeUser
) -> None:
    client = app.test_client()
    log_in(client, make_user("bob"))
    assert client.get("/").status_code == 200
    session.query(User).filter_by(username="bob").update({"active": False})
    session.commit()
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("name", ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>'])
def test_names_holding_markup_render_escaped(
    admin_client: FlaskClient, session: Session, name: str, make_user: MakeUser
) -> None:
    session.add(
        Repository(owner="acme", name="shop", base_schema=None, required_label=name, enabled=True)
    )
    session.add(GithubUser(login="alice", source_schema="s1"))
    make_user(name, Role.MEMBER)
    for path in ("/repositories/", "/users/", "/"):
        page = admin_client.get(path).get_data(as_text=True)
        assert "<script>alert" not in page, path
        assert "<img src=x" not in page, path
    users_page = admin_client.get("/users/").get_data(as_text=True)
    assert name.replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;") in users_page


def test_pages_carry_a_content_security_policy(admin_client: FlaskClient) -> None:
    policy = admin_client.get("/").headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
