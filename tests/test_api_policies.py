"""``/api/v1`` for sleep, wake, pins, expiry and cost: the same rules as the PR page.

The app runs with ``[pool] ttl_hours = 24`` and ``[cost] currency = EUR``, and web_fixtures'
``clock``, which the test moves.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from pullre.accounts import api_tokens
from pullre.accounts import user_accounts as accounts
from pullre.config import Settings
from pullre.models import (
    Environment,
    EnvironmentStatus,
    Event,
    PullRequest,
    Role,
    RunningSpan,
    SleepReason,
)
from tests.clock import MovingClock
from tests.page_seeds import add_pull, add_repository, add_server
from tests.web_fixtures import CLOCK_START, MakeUser, make_settings

T0 = CLOCK_START  # a Tuesday, 10:00 UTC: where the clock fixture starts


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, tmp_path, PULLRE_POOL_TTL_HOURS="24", PULLRE_COST_CURRENCY="EUR")


@pytest.fixture
def tokens(session: Session, make_user: MakeUser) -> dict[str, str]:
    """API tokens of an admin, a member, and ``alice`` (the author of page_seeds' PRs)."""
    secrets = {}
    for name, role in (("ada", Role.ADMIN), ("bob", Role.MEMBER), ("alice", Role.MEMBER)):
        owner = accounts.find_user(session, make_user(name, role))
        assert owner is not None
        secrets[name] = api_tokens.create_token(session, owner, "test")[1]
    session.commit()
    return secrets


def call(
    client: FlaskClient, method: str, path: str, secret: str, body: Any = None
) -> TestResponse:
    return client.open(
        path, method=method, json=body, headers={"Authorization": f"Bearer {secret}"}
    )


def ready_pull(session: Session, number: int = 1) -> PullRequest:
    pull = add_pull(
        session, add_repository(session), number, status=EnvironmentStatus.READY,
        server=add_server(session, number),
    )  # fmt: skip
    session.commit()
    return pull


def status_of(session: Session, pull: PullRequest) -> EnvironmentStatus:
    environment = session.scalars(
        select(Environment).where(Environment.pull_request_id == pull.id)
    ).one()
    session.refresh(environment)
    return environment.status


def test_sleep_then_wake_with_a_members_token(
    client: FlaskClient, session: Session, clock: MovingClock, tokens: dict[str, str]
) -> None:
    pull = ready_pull(session)
    slept = call(client, "POST", f"/api/v1/pulls/{pull.id}/sleep", tokens["bob"])
    assert (slept.status_code, slept.json) == (202, {"ok": True})
    assert status_of(session, pull) is EnvironmentStatus.SLEEPING

    body = call(client, "GET", f"/api/v1/pulls/{pull.id}", tokens["bob"]).json
    assert body["environment"]["status"] == "sleeping"
    assert body["sleep"] == {"since": T0.isoformat(), "reason": "by_hand"}
    again = call(client, "POST", f"/api/v1/pulls/{pull.id}/sleep", tokens["bob"])
    assert again.status_code == 409
    assert again.json == {"error": "#1 is sleeping; only a ready or failed one can sleep"}

    clock.now = T0 + timedelta(hours=1)
    woken = call(client, "POST", f"/api/v1/pulls/{pull.id}/wake", tokens["bob"])
    assert woken.status_code == 202
    assert status_of(session, pull) is EnvironmentStatus.PROVISIONING
    body = call(client, "GET", f"/api/v1/pulls/{pull.id}", tokens["bob"]).json
    assert body["sleep"] is None
    assert [e["message"] for e in body["events"][:2]] == [
        "#1 wakes (woken by bob)",
        "#1 sleeps (put to sleep by bob)",
    ]
    refused = call(client, "POST", f"/api/v1/pulls/{pull.id}/wake", tokens["bob"])
    assert refused.status_code == 409
    assert refused.json == {"error": "#1 is provisioning, not sleeping"}
    assert call(client, "POST", "/api/v1/pulls/999/wake", tokens["bob"]).status_code == 404


def test_pins_follow_the_ui_rules(
    client: FlaskClient, session: Session, clock: MovingClock, tokens: dict[str, str]
) -> None:
    pull = ready_pull(session)
    path = f"/api/v1/pulls/{pull.id}"
    reason = {"reason": "Demo for <b>ACME</b> on Friday"}

    refused = call(client, "POST", f"{path}/pin", tokens["bob"], reason)
    assert refused.status_code == 403
    assert refused.json == {"error": "only an admin or the author of #1 may pin it"}
    for bad in (None, {}, {"reason": "  "}, {"reason": 5}, ["x"], {"reason": "x" * 501}):
        answer = call(client, "POST", f"{path}/pin", tokens["alice"], bad)
        assert answer.status_code == 400, bad
        assert "reason" in answer.json["error"]
    session.refresh(pull)
    assert pull.pinned_at is None

    assert call(client, "POST", f"{path}/pin", tokens["alice"], reason).status_code == 202
    body = call(client, "GET", path, tokens["bob"]).json
    assert body["pin"] == {
        "by": "alice",
        "reason": "Demo for <b>ACME</b> on Friday",
        "at": T0.isoformat(),
    }
    assert body["expires_at"] is None  # pinned: never expires

    assert call(client, "POST", f"{path}/unpin", tokens["bob"]).status_code == 403
    assert call(client, "POST", f"{path}/unpin", tokens["ada"]).status_code == 202
    again = call(client, "POST", f"{path}/unpin", tokens["ada"])
    assert (again.status_code, again.json) == (409, {"error": "#1 is not pinned"})
    assert call(client, "GET", path, tokens["bob"]).json["pin"] is None
    kinds = session.scalars(
        select(Event.kind).where(Event.pull_request_id == pull.id).order_by(Event.id)
    ).all()
    assert kinds == ["pinned", "unpinned"]


def test_reading_one_pr_or_acting_on_it_is_activity_the_list_is_not(
    client: FlaskClient, session: Session, clock: MovingClock, tokens: dict[str, str]
) -> None:
    pull = ready_pull(session)
    environment = pull.environments[-1]
    environment.last_activity_at = T0 - timedelta(hours=10)
    session.commit()

    clock.now = T0 + timedelta(hours=1)
    listed = call(client, "GET", "/api/v1/pulls", tokens["bob"]).json["items"][0]
    session.refresh(environment)
    assert environment.last_activity_at == T0 - timedelta(hours=10)
    assert listed["expires_at"] == (T0 + timedelta(hours=14)).isoformat()

    clock.now = T0 + timedelta(hours=2)
    body = call(client, "GET", f"/api/v1/pulls/{pull.id}", tokens["bob"]).json
    session.refresh(environment)
    assert environment.last_activity_at == clock.now
    assert body["expires_at"] == (clock.now + timedelta(hours=24)).isoformat()

    clock.now = T0 + timedelta(hours=3)
    call(client, "POST", f"/api/v1/pulls/{pull.id}/redeploy", tokens["bob"])
    session.refresh(environment)
    assert environment.last_activity_at == clock.now


def test_cost_in_the_list_and_in_one_pr(
    client: FlaskClient, session: Session, clock: MovingClock, tokens: dict[str, str]
) -> None:
    pull = ready_pull(session)
    idle = add_pull(session, pull.repository, 2)
    environment = pull.environments[-1]
    environment.status = EnvironmentStatus.SLEEPING
    environment.sleep_reason = SleepReason.IDLE
    environment.slept_at = T0 - timedelta(hours=5)
    for start, end, price in ((-9, -6, "0.0416"), (-1, None, "0.0416"), (-20, -18, None)):
        session.add(
            RunningSpan(
                server_id=environment.server_id,
                environment_id=environment.id,
                started_at=T0 + timedelta(hours=start),
                ended_at=None if end is None else T0 + timedelta(hours=end),
                hourly_price=None if price is None else Decimal(price),
            )
        )
    session.commit()

    items = {
        item["number"]: item
        for item in call(client, "GET", "/api/v1/pulls", tokens["bob"]).json["items"]
    }
    expected = {
        "hours": 6.0,
        "amount": "0.1664",
        "unpriced_hours": 2.0,
        "currency": "EUR",
        "running_since": (T0 - timedelta(hours=1)).isoformat(),
    }
    assert items[1]["cost"] == expected
    assert items[1]["sleep"] == {"since": (T0 - timedelta(hours=5)).isoformat(), "reason": "idle"}
    assert items[2]["cost"] == {
        "hours": 0.0,
        "amount": "0.0000",
        "unpriced_hours": 0.0,
        "currency": "EUR",
        "running_since": None,
    }
    assert items[2]["sleep"] is None
    assert items[2]["expires_at"] is None  # no environment, nothing to expire
    assert idle.id == items[2]["id"]
    assert call(client, "GET", f"/api/v1/pulls/{pull.id}", tokens["bob"]).json["cost"] == expected


def test_a_browser_session_cannot_pin_through_the_api(
    admin_client: FlaskClient, session: Session, clock: MovingClock
) -> None:
    pull = ready_pull(session)
    response = admin_client.post(f"/api/v1/pulls/{pull.id}/pin", json={"reason": "csrf"})
    assert response.status_code == 401
    session.refresh(pull)
    assert pull.pinned_at is None
