"""Personal API tokens: shown once, stored hashed, revocable, and each person manages their own."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from pullre.accounts import api_tokens
from pullre.accounts import user_accounts as accounts
from pullre.models import ApiToken, Role, User
from tests.clock import MovingClock
from tests.web_fixtures import MakeUser, csrf_token, log_in

_SHOWN = re.compile(r'<code class="token">([^<]+)</code>')
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _user(session: Session, username: str) -> User:
    user = accounts.find_user(session, username)
    assert user is not None
    return user


def test_a_token_is_stored_only_as_its_hash(session: Session, make_user: MakeUser) -> None:
    owner = _user(session, make_user("alice"))
    token, secret = api_tokens.create_token(session, owner, "  ci job  ")
    session.commit()
    assert secret.startswith("pullre_")
    assert len(secret) > 40
    assert token.name == "ci job"
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    stored = session.execute(select(ApiToken.__table__)).one()
    assert secret not in [str(value) for value in stored]
    assert api_tokens.authenticate(session, secret, clock=MovingClock(T0)) is owner
    _, other = api_tokens.create_token(session, owner, "second")
    assert other != secret


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_a_token_needs_a_short_name(session: Session, make_user: MakeUser, name: str) -> None:
    owner = _user(session, make_user("alice"))
    with pytest.raises(api_tokens.TokenError):
        api_tokens.create_token(session, owner, name)


def test_unknown_revoked_and_deactivated_tokens_authenticate_no_one(
    session: Session, make_user: MakeUser
) -> None:
    clock = MovingClock(T0)
    owner = _user(session, make_user("alice"))
    token, secret = api_tokens.create_token(session, owner, "ci")
    _, kept = api_tokens.create_token(session, owner, "kept")
    session.commit()
    for wrong in ("", "pullre_nope", secret.upper(), secret + "x", "x" * 10_000):
        assert api_tokens.authenticate(session, wrong, clock=clock) is None, wrong
    api_tokens.revoke_token(session, token, actor="alice")
    session.commit()
    assert api_tokens.authenticate(session, secret, clock=clock) is None
    assert api_tokens.authenticate(session, kept, clock=clock) is owner
    owner.active = False
    session.commit()
    assert api_tokens.authenticate(session, kept, clock=clock) is None


def test_last_used_moves_at_most_once_a_minute(session: Session, make_user: MakeUser) -> None:
    clock = MovingClock(T0)
    token, secret = api_tokens.create_token(session, _user(session, make_user("alice")), "ci")
    session.commit()
    assert token.last_used_at is None
    start = clock.now
    api_tokens.authenticate(session, secret, clock=clock)
    assert token.last_used_at == start
    clock.now = start + timedelta(seconds=59)
    api_tokens.authenticate(session, secret, clock=clock)
    assert token.last_used_at == start
    assert not session.dirty  # no write for a lookup within the minute
    clock.now = start + timedelta(seconds=61)
    api_tokens.authenticate(session, secret, clock=clock)
    assert token.last_used_at == clock.now


# --- the tokens page -------------------------------------------------------------------------


def _create(client: FlaskClient, name: str) -> tuple[int, str, str]:
    """POST the form; returns the status, the page and the token shown on it ('' if none)."""
    response = client.post(
        "/tokens/", data={"name": name, "csrf_token": csrf_token(client, "/tokens/")}
    )
    page = response.get_data(as_text=True)
    shown = _SHOWN.search(page)
    return response.status_code, page, shown.group(1) if shown else ""


def test_the_page_shows_a_new_token_once(member_client: FlaskClient, session: Session) -> None:
    status, page, secret = _create(member_client, "deploy script")
    assert status == 200
    assert secret.startswith("pullre_")
    assert "will not be shown again" in page
    stored = session.scalars(select(ApiToken)).one()
    assert stored.name == "deploy script"
    assert stored.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    listing = member_client.get("/tokens/")
    assert "deploy script" in listing.text
    assert secret not in listing.text
    assert "never" in listing.text  # last used
    # The token works on the API, as the member.
    answer = member_client.get("/api/v1/pulls", headers={"Authorization": f"Bearer {secret}"})
    assert answer.status_code == 200
    session.refresh(stored)
    assert stored.last_used_at is not None


def test_the_shown_token_is_not_cached(member_client: FlaskClient) -> None:
    response = member_client.post(
        "/tokens/", data={"name": "ci", "csrf_token": csrf_token(member_client, "/tokens/")}
    )
    assert response.headers["Cache-Control"] == "no-store"
    assert _SHOWN.search(response.text)


def test_a_blank_name_creates_nothing(member_client: FlaskClient, session: Session) -> None:
    status, page, secret = _create(member_client, "   ")
    assert (status, secret) == (200, "")
    assert "This field is required" in page
    assert session.scalars(select(ApiToken)).all() == []


def test_creating_needs_the_csrf_token(member_client: FlaskClient, session: Session) -> None:
    assert member_client.post("/tokens/", data={"name": "ci"}).status_code == 400
    assert session.scalars(select(ApiToken)).all() == []


@pytest.mark.parametrize("name", ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>'])
def test_token_names_render_escaped(member_client: FlaskClient, name: str) -> None:
    _, created, _ = _create(member_client, name)
    listing = member_client.get("/tokens/").text
    for page in (created, listing):
        assert "<script>alert" not in page
        assert "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in listing or "&#34;&gt;&lt;img" in listing


def _revoke(client: FlaskClient, token_id: int) -> int:
    return client.post(
        f"/tokens/{token_id}/revoke", data={"csrf_token": csrf_token(client, "/tokens/")}
    ).status_code


def test_people_see_and_revoke_their_own_tokens_only(
    app: Flask, session: Session, make_user: MakeUser
) -> None:
    alice, bob = app.test_client(), app.test_client()
    log_in(alice, make_user("alice"))
    log_in(bob, make_user("bob"))
    _, _, alice_secret = _create(alice, "alice-ci")
    _create(bob, "bob-ci")
    alice_id = session.scalars(select(ApiToken.id).where(ApiToken.name == "alice-ci")).one()
    bob_id = session.scalars(select(ApiToken.id).where(ApiToken.name == "bob-ci")).one()

    assert "<td>alice-ci</td>" in alice.get("/tokens/").text
    assert "bob-ci" not in alice.get("/tokens/").text
    assert _revoke(alice, bob_id) == 404
    assert session.get(ApiToken, bob_id) is not None

    assert _revoke(alice, alice_id) == 302
    session.expire_all()
    assert session.get(ApiToken, alice_id) is None
    after = alice.get("/tokens/").text
    assert "Token alice-ci revoked." in after
    assert "<td>alice-ci</td>" not in after
    headers = {"Authorization": f"Bearer {alice_secret}"}
    assert alice.get("/api/v1/pulls", headers=headers).status_code == 401
    assert _revoke(alice, alice_id) == 404


def test_admins_see_and_revoke_everyones_tokens(
    admin_client: FlaskClient, session: Session, make_user: MakeUser
) -> None:
    owner = _user(session, make_user("carol", Role.MEMBER))
    token, secret = api_tokens.create_token(session, owner, "carol-laptop")
    session.commit()
    token_id = token.id
    listing = admin_client.get("/tokens/").text
    assert "carol-laptop" in listing
    assert "carol" in listing.split("carol-laptop", 1)[1]  # the owner column
    assert _revoke(admin_client, token_id) == 302
    session.expire_all()
    assert session.get(ApiToken, token_id) is None
    assert api_tokens.authenticate(session, secret, clock=MovingClock(T0)) is None


def test_the_nav_links_to_the_tokens_page(member_client: FlaskClient) -> None:
    assert 'href="/tokens/"' in member_client.get("/").text
