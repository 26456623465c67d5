"""Accounts under attack: password guessing slows down, and ended sessions stay ended.

Real Flask test clients against the real migrated SQLite DB; the app's clock is moved instead
of sleeping through lockouts.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from pullre.accounts import login_throttle
from pullre.models import Event, Role, User
from pullre.web import create_app
from tests.clock import MovingClock
from tests.web_fixtures import (
    PASSWORD,
    MakeUser,
    csrf_token,
    log_in,
    logged_in_client,
    make_settings,
)


def attempt(client: FlaskClient, username: str, password: str) -> tuple[int, str, str | None]:
    token = csrf_token(client, "/login")
    response = client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}
    )
    return (
        response.status_code,
        response.get_data(as_text=True),
        response.headers.get("Retry-After"),
    )


def from_address(app: Flask, address: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def test_failed_logins_lock_the_account_then_let_it_in_after_the_wait(
    app: Flask, clock: MovingClock, make_user: MakeUser, session: Session
) -> None:
    make_user("alice")
    client = app.test_client()
    free = login_throttle.FREE_ACCOUNT_FAILURES
    codes = [attempt(client, "alice", f"guess-{n}")[0] for n in range(free)]
    assert codes == [401] * free
    status, page, retry = attempt(client, "alice", "guess-again")
    assert (status, retry) == (429, "1")
    assert "Too many failed logins" in page
    # While locked, even the right password is not checked: guessing stops, not just slows.
    assert attempt(client, "alice", PASSWORD)[0] == 429
    clock.advance(seconds=2)
    status, _, _ = attempt(client, "alice", "guess-7")
    assert status == 429  # the 7th failure locks for 2 s: the wait doubles
    clock.advance(seconds=1)
    assert attempt(client, "alice", PASSWORD)[0] == 429
    clock.advance(seconds=1)
    assert attempt(client, "alice", PASSWORD)[0] == 302
    # A success clears the account's count: one typo afterwards is not a lockout.
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    assert attempt(client, "alice", "typo")[0] == 401
    kinds = session.scalars(select(Event.kind).where(Event.kind == "login.failed")).all()
    assert len(kinds) == free + 3


def test_each_failure_is_an_event_and_a_log_line_without_the_password(
    app: Flask,
    clock: MovingClock,
    make_user: MakeUser,
    session: Session,
    caplog: pytest.LogCaptureFixture,
) -> None:
    make_user("alice")
    client = from_address(app, "203.0.113.7")
    with caplog.at_level(logging.INFO):
        attempt(client, "alice", "hunter2-secret")
    event = session.scalars(select(Event).where(Event.kind == "login.failed")).one()
    assert event.message.startswith("failed login for 'alice' from 203.0.113.7")
    assert event.details == {"username": "alice", "address": "203.0.113.7"}
    assert "failed login for 'alice' from 203.0.113.7" in caplog.text
    assert "hunter2-secret" not in caplog.text
    assert "hunter2-secret" not in str(event.details) + event.message


def test_guessing_across_accounts_locks_the_address_not_other_addresses(
    app: Flask, clock: MovingClock, make_user: MakeUser
) -> None:
    make_user("alice")
    guesser = from_address(app, "198.51.100.9")
    free = login_throttle.FREE_ADDRESS_FAILURES
    codes = [attempt(guesser, f"user-{n}", "password1")[0] for n in range(free)]
    assert codes == [401] * free
    assert attempt(guesser, "someone-new", "password1")[0] == 429
    assert attempt(guesser, "alice", PASSWORD)[0] == 429
    # Alice at her own desk is not locked out by someone else's address.
    assert attempt(from_address(app, "192.0.2.20"), "alice", PASSWORD)[0] == 302
    # The window passes and the address may try again.
    clock.advance(minutes=16)
    assert attempt(guesser, "alice", PASSWORD)[0] == 302


def test_logout_ends_every_session_of_that_user(app: Flask, make_user: MakeUser) -> None:
    make_user("alice")
    laptop, phone = app.test_client(), app.test_client()
    log_in(laptop, "alice")
    log_in(phone, "alice")
    # A copy of the laptop's cookie, as someone who lifted it would hold it.
    copied = app.test_client()
    cookie = laptop.get_cookie("session")
    assert cookie is not None
    copied.set_cookie("session", cookie.value)
    assert copied.get("/").status_code == 200
    laptop.post("/logout", data={"csrf_token": csrf_token(laptop, "/")})
    assert laptop.get("/").status_code == 302
    assert copied.get("/").status_code == 302
    assert phone.get("/").status_code == 302
    # Logging in again works and starts a fresh session.
    log_in(phone, "alice")
    assert phone.get("/").status_code == 200


def test_a_password_reset_ends_the_users_sessions_but_not_the_admins(
    app: Flask, make_user: MakeUser, session: Session
) -> None:
    make_user("alice")
    admin = logged_in_client(app, make_user("boss", Role.ADMIN))
    alice = logged_in_client(app, "alice")
    user = session.scalars(select(User).where(User.username == "alice")).one()
    response = admin.post(
        f"/users/{user.id}/edit",
        data={
            "username": "alice",
            "role": "member",
            "active": "y",
            "password": "a brand new password",
            "csrf_token": csrf_token(admin, f"/users/{user.id}/edit"),
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    assert alice.get("/").status_code == 302
    assert admin.get("/users/").status_code == 200
    assert attempt(app.test_client(), "alice", "a brand new password")[0] == 302


def test_an_admin_changing_their_own_password_stays_in_and_ends_their_other_sessions(
    app: Flask, make_user: MakeUser, session: Session
) -> None:
    make_user("boss", Role.ADMIN)
    here, elsewhere = logged_in_client(app, "boss"), logged_in_client(app, "boss")
    user = session.scalars(select(User).where(User.username == "boss")).one()
    response = here.post(
        f"/users/{user.id}/edit",
        data={
            "username": "boss",
            "role": "admin",
            "active": "y",
            "password": "another long password",
            "csrf_token": csrf_token(here, f"/users/{user.id}/edit"),
        },
    )
    assert response.status_code == 302
    assert here.get("/users/").status_code == 200
    assert elsewhere.get("/").status_code == 302


@pytest.mark.parametrize("value", ["", "x", "7", "7.x", "abc.1", "99999999999999999999999.0"])
def test_a_forged_session_id_is_logged_out_not_an_error(
    app: Flask, make_user: MakeUser, value: str
) -> None:
    make_user("alice")
    client = app.test_client()
    with client.session_transaction() as cookie:
        cookie["_user_id"] = value
    assert client.get("/").status_code == 302


@pytest.mark.parametrize(("proxies", "counted"), [("0", "127.0.0.1"), ("1", "203.0.113.50")])
def test_the_address_behind_a_trusted_proxy_is_counted_and_otherwise_the_header_is_ignored(
    db_url: str,
    tmp_path: Path,
    session_factory: sessionmaker[Session],
    session: Session,
    proxies: str,
    counted: str,
) -> None:
    settings = make_settings(db_url, tmp_path, PULLRE_CONTROLLER_TRUSTED_PROXIES=proxies)
    app = create_app(settings, session_factory=session_factory)
    client = app.test_client()
    token = csrf_token(client, "/login")
    client.post(
        "/login",
        data={"username": "nobody", "password": "wrong-pass", "csrf_token": token},
        headers={"X-Forwarded-For": "203.0.113.50"},
    )
    event = session.scalars(select(Event).where(Event.kind == "login.failed")).one()
    assert event.details["address"] == counted
