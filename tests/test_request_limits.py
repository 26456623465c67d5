"""What a caller can make the controller read and store: body size, agent call rate, step history.

The real app (``create_app``) over the test database; the agent's calls are the HTTP calls a box
makes, with the tokens an assignment hands out.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from pullre.environments import step_retention
from pullre.models import DeployStep, Environment, EnvironmentStatus
from pullre.servers.registry import register_server
from pullre.web import create_app
from pullre.web.agent_api import RATE_LIMIT_KEY
from pullre.web.rate_limit import RateLimiter
from tests.agent_fixtures import stage_environment
from tests.web_fixtures import make_settings

SHA = "d" * 40
TWO_MB = 2 * 1024 * 1024
HEADER = "X-Pullre-Environment-Token"


def test_a_2_mb_login_post_is_413_before_anything_reads_it(client: FlaskClient) -> None:
    # Fields under Flask's per-field form limit: only the body limit stops this one.
    fields = {f"f{i}": "x" * (400 * 1024) for i in range(5)}
    response = client.post(
        "/login",
        data={"username": "ada", "password": "pw", **fields},
        headers={"Accept": "text/html"},
    )
    assert response.status_code == 413
    assert "larger than pullre accepts here (1024 KiB)" in response.get_data(as_text=True)


def test_a_2_mb_agent_report_is_413_in_json(
    client: FlaskClient, session: Session, deploying: tuple[int, dict[str, str]]
) -> None:
    environment_id, headers = deploying
    response = client.post(
        "/api/agent/steps",
        headers=_own_token(client, headers),
        json={
            "environment_id": environment_id,
            "head_sha": SHA,
            "step": "build",
            "status": "ok",
            "log": "z" * TWO_MB,
        },
    )
    assert response.status_code == 413
    assert "1024 KiB" in response.json["error"]  # type: ignore[index]
    assert _stored(session, environment_id) == (0, 0)


def test_the_webhook_keeps_its_own_25_mb(
    db_url: str, tmp_path: Path, session_factory: sessionmaker[Session]
) -> None:
    secret = "a-webhook-secret-for-limits"
    settings = make_settings(db_url, tmp_path, PULLRE_GITHUB_WEBHOOK_SECRET=secret)
    client = create_app(settings, session_factory=session_factory).test_client()
    body = json.dumps({"zen": "Keep it logically awesome.", "padding": "x" * TWO_MB}).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    response = client.post(
        "/webhook/github",
        data=body,
        content_type="application/json",
        headers={"X-GitHub-Event": "ping", "X-Hub-Signature-256": signature},
    )
    assert response.status_code == 200, response.json


# -- the agent API ----------------------------------------------------------------------------


@pytest.fixture
def deploying(session: Session) -> tuple[int, dict[str, str]]:
    """A deploying environment and the headers its agent reports with (both tokens)."""
    server, token = register_server(session, "i-000000d1", "https://d1.example", "d1")
    env = stage_environment(
        session, server, 9, SHA, clone_url="/srv/git/shop.git", status=EnvironmentStatus.DEPLOYING
    )
    session.commit()
    return env.id, {"Authorization": f"Bearer {token}"}


def _own_token(client: FlaskClient, headers: dict[str, str]) -> dict[str, str]:
    answer = client.get("/api/agent/assignment", headers=headers).json
    assert answer is not None
    return {**headers, HEADER: answer["assignment"]["environment_token"]}


def _report(
    client: FlaskClient, headers: dict[str, str], environment_id: int, step: str, status: str
) -> tuple[int, str | None]:
    response = client.post(
        "/api/agent/steps",
        headers=headers,
        json={
            "environment_id": environment_id,
            "head_sha": SHA,
            "step": step,
            "status": status,
            "log": "y" * (64 * 1024),
        },
    )
    return response.status_code, response.headers.get("Retry-After")


def _stored(session: Session, environment_id: int) -> tuple[int, int]:
    """(rows, rows that still hold a log) of the environment's steps."""
    session.expire_all()
    mine = DeployStep.environment_id == environment_id
    rows = session.scalar(select(func.count()).select_from(DeployStep).where(mine)) or 0
    logged = (
        session.scalar(
            select(func.count()).select_from(DeployStep).where(mine, DeployStep.log_tail != "")
        )
        or 0
    )
    return rows, logged


def test_a_step_report_flood_gets_429_with_retry_after_and_stores_a_bounded_number(
    app: Flask,
    client: FlaskClient,
    session: Session,
    deploying: tuple[int, dict[str, str]],
) -> None:
    environment_id, headers = deploying
    app.extensions[RATE_LIMIT_KEY] = RateLimiter(burst=40, per_second=0.5)
    headers = _own_token(client, headers)

    answers = [_report(client, headers, environment_id, "build", "ok") for _ in range(300)]

    accepted = [code for code, _ in answers if code == 200]
    limited = [retry for code, retry in answers if code == 429]
    assert len(accepted) + len(limited) == 300
    assert 38 <= len(accepted) <= 42  # the burst (less the assignment call), then next to none
    assert limited
    assert all(retry is not None and int(retry) >= 1 for retry in limited)
    refused = client.post("/api/agent/heartbeat", headers=headers, json={"agent_version": "x"})
    assert refused.status_code == 429
    assert "too many calls" in refused.json["error"]  # type: ignore[index]
    rows, logged = _stored(session, environment_id)
    assert rows == len(accepted)
    assert logged <= step_retention.MAX_LOGGED_STEPS
    # Another server's agent is not held up by this one's flood.
    _, other_token = register_server(session, "i-000000d2", "https://d2.example", "d2")
    session.commit()
    assert (
        client.get(
            "/api/agent/assignment", headers={"Authorization": f"Bearer {other_token}"}
        ).status_code
        == 200
    )


def test_stored_steps_keep_logs_of_the_latest_deploys_only_and_stay_bounded(
    app: Flask,
    client: FlaskClient,
    session: Session,
    deploying: tuple[int, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    environment_id, headers = deploying
    app.extensions[RATE_LIMIT_KEY] = RateLimiter(burst=10_000)
    monkeypatch.setattr(step_retention, "MAX_STEPS", 60)  # the row cap, reached sooner
    headers = _own_token(client, headers)
    deploys = 8
    for _ in range(deploys):
        assert _report(client, headers, environment_id, "fetch", "running")[0] == 200
        for step in ("fetch", "checkout", "build", "migrate", "start"):
            assert _report(client, headers, environment_id, step, "ok")[0] == 200

    rows, logged = _stored(session, environment_id)
    assert rows == deploys * 6  # 48 rows: under the cap, every row kept
    assert logged == step_retention.KEEP_DEPLOYS * 6  # older deploys lost their logs only
    newest = session.scalars(
        select(DeployStep.log_tail)
        .where(DeployStep.environment_id == environment_id)
        .order_by(DeployStep.id.desc())
        .limit(6)
    ).all()
    assert all(len(tail) == 64 * 1024 for tail in newest)

    for _ in range(100):  # a flood that never starts a deploy
        assert _report(client, headers, environment_id, "build", "ok")[0] == 200
    rows, logged = _stored(session, environment_id)
    assert rows == 60
    assert logged <= step_retention.MAX_LOGGED_STEPS
    environment = session.get_one(Environment, environment_id)
    assert environment.status is EnvironmentStatus.DEPLOYING
