"""Admin forms save what was typed: blanks as "not set", "0" as "0", duplicates as form errors."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from pullre.models import Event, GithubUser, Repository, Role, User
from tests.web_fixtures import MakeUser, csrf_token


def post(client: FlaskClient, path: str, **data: str) -> tuple[int, str]:
    response = client.post(path, data={"csrf_token": csrf_token(client, path), **data})
    return response.status_code, response.get_data(as_text=True)


def test_add_repository_with_blank_optional_fields(
    admin_client: FlaskClient, session: Session
) -> None:
    status, _ = post(
        admin_client,
        "/repositories/new",
        full_name=" acme/shop ",
        base_schema="",
        required_label="",
        enabled="y",
    )
    assert status == 302
    repo = session.scalars(select(Repository)).one()
    assert (repo.owner, repo.name, repo.base_schema, repo.required_label, repo.enabled) == (
        "acme",
        "shop",
        None,
        None,
        True,
    )
    assert session.scalars(select(Event.kind)).all() == ["repository.saved"]


def test_zero_and_unchecked_values_save_as_given(
    admin_client: FlaskClient, session: Session
) -> None:
    status, _ = post(
        admin_client,
        "/repositories/new",
        full_name="acme/shop",
        base_schema="0",
        required_label="0",
    )
    assert status == 302
    repo = session.scalars(select(Repository)).one()
    assert (repo.base_schema, repo.required_label, repo.enabled) == ("0", "0", False)


def test_edit_repository_clears_an_optional_field(
    admin_client: FlaskClient, session: Session
) -> None:
    repo = Repository(owner="acme", name="shop", base_schema="shop_base", required_label="staging")
    session.add(repo)
    session.commit()
    status, _ = post(
        admin_client,
        f"/repositories/{repo.id}/edit",
        full_name="acme/shop",
        base_schema="shop_base",
        required_label="",
        enabled="y",
    )
    assert status == 302
    session.refresh(repo)
    assert (repo.base_schema, repo.required_label) == ("shop_base", None)


def test_duplicate_repository_is_a_form_error(admin_client: FlaskClient, session: Session) -> None:
    session.add(Repository(owner="acme", name="shop"))
    session.commit()
    status, page = post(admin_client, "/repositories/new", full_name="acme/shop")
    assert status == 200
    assert "acme/shop is already registered." in page
    assert session.query(Repository).count() == 1


def test_invalid_repository_values_are_form_errors(
    admin_client: FlaskClient, session: Session
) -> None:
    status, page = post(
        admin_client, "/repositories/new", full_name="acme shop", base_schema="drop table;"
    )
    assert status == 200
    assert "expected OWNER/NAME" in page
    assert "letters, digits and underscores only" in page
    assert session.query(Repository).count() == 0


def test_remove_repository(admin_client: FlaskClient, session: Session) -> None:
    repo = Repository(owner="acme", name="shop")
    session.add(repo)
    session.commit()
    status, _ = post(admin_client, f"/repositories/{repo.id}/delete")
    assert status == 302
    assert session.query(Repository).count() == 0
    assert admin_client.get(f"/repositories/{repo.id}/edit").status_code == 404


def test_github_user_logins_are_unique_ignoring_case(
    admin_client: FlaskClient, session: Session
) -> None:
    assert (
        post(admin_client, "/github-users/new", login="Alice", source_schema="alice_db")[0] == 302
    )
    status, page = post(admin_client, "/github-users/new", login="alice", source_schema="other")
    assert status == 200
    assert "already registered" in page
    assert [(p.login, p.source_schema) for p in session.scalars(select(GithubUser))] == [
        ("Alice", "alice_db")
    ]


def test_new_user_needs_a_password_and_gets_a_hash(
    admin_client: FlaskClient, session: Session
) -> None:
    status, page = post(admin_client, "/users/new", username="carol", role="member", active="y")
    assert (status, "A new user needs a password." in page) == (200, True)
    status, _ = post(
        admin_client,
        "/users/new",
        username="carol",
        role="member",
        active="y",
        password="long enough pw",
    )
    assert status == 302
    carol = session.scalars(select(User).where(User.username == "carol")).one()
    assert carol.password_hash.startswith("scrypt:")
    assert carol.role is Role.MEMBER


def test_editing_a_user_without_password_keeps_it(
    admin_client: FlaskClient, session: Session, make_user: MakeUser
) -> None:
    make_user("dave")
    dave = session.scalars(select(User).where(User.username == "dave")).one()
    before = dave.password_hash
    status, _ = post(
        admin_client,
        f"/users/{dave.id}/edit",
        username="dave",
        role="admin",
        active="y",
        password="",
    )
    assert status == 302
    session.refresh(dave)
    assert (dave.password_hash, dave.role) == (before, Role.ADMIN)


def test_the_last_admin_cannot_be_demoted_or_removed(
    admin_client: FlaskClient, session: Session
) -> None:
    admin = session.scalars(select(User).where(User.role == Role.ADMIN)).one()
    status, page = post(
        admin_client, f"/users/{admin.id}/edit", username=admin.username, role="member", active="y"
    )
    assert (status, "last active admin" in page) == (200, True)
    session.refresh(admin)
    assert admin.role is Role.ADMIN


def test_duplicate_username_is_a_form_error(admin_client: FlaskClient, make_user: MakeUser) -> None:
    make_user("erin")
    status, page = post(
        admin_client, "/users/new", username="erin", role="member", password="long enough pw"
    )
    assert (status, "already exists" in page) == (200, True)
