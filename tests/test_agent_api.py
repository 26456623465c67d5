"""The agent API: one server's token sees only its own assignment; reports move the status."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from pullre.config import Settings
from pullre.models import (
    DeployStep,
    Environment,
    EnvironmentStatus,
    Event,
    GithubUser,
    PullRequest,
    Repository,
    Server,
)
from pullre.servers.registry import register_server
from pullre.web import create_app
from pullre.web.request_clock import CLOCK_KEY
from tests.agent_fixtures import stage_environment
from tests.web_fixtures import make_settings

SHA = "a" * 40
NEW_SHA = "b" * 40


class Agent:
    def __init__(self, client: FlaskClient, token: str) -> None:
        self.client, self.headers = client, {"Authorization": f"Bearer {token}"}

    def assignment(self) -> dict[str, object] | None:
        response = self.client.get("/api/agent/assignment", headers=self.headers)
        assert response.status_code == 200, response.json
        return response.json["assignment"]  # type: ignore[index,no-any-return]

    def step(
        self, environment_id: int, step: str, status: str, log: str = "", sha: str = SHA
    ) -> int:
        return self.client.post(
            "/api/agent/steps",
            headers=self.headers,
            json={
                "environment_id": environment_id,
                "head_sha": sha,
                "step": step,
                "status": status,
                "log": log,
            },
        ).status_code


@pytest.fixture
def staged(session: Session) -> tuple[Environment, str, str]:
    """PR #12 of acme/shop ready to deploy on server one; server two is free."""
    one, token_one = register_server(session, "i-00000001", "https://one.example", "one")
    _, token_two = register_server(session, "i-00000002", "https://two.example", "two")
    env = stage_environment(
        session,
        one,
        12,
        SHA,
        clone_url="/srv/git/shop.git",
        head_ref="feature",
        base_schema="shop_base",
        schema_name="pr_1_12",
        schema_ready_at=datetime.now(UTC),
    )
    session.commit()
    return env, token_one, token_two


def test_requests_without_a_valid_token_are_refused(client: FlaskClient, staged: object) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        response = client.get("/api/agent/assignment", headers=headers)
        assert response.status_code == 401
        assert "error" in response.json
    assert client.post("/api/agent/heartbeat", json={}).status_code == 401


def test_a_token_sees_only_its_own_server(
    client: FlaskClient, staged: tuple[Environment, str, str]
) -> None:
    env, token_one, token_two = staged
    mine = Agent(client, token_one).assignment()
    assert mine is not None
    assert (mine["environment_id"], mine["pr_number"], mine["head_sha"]) == (env.id, 12, SHA)
    assert mine["clone_url"] == "/srv/git/shop.git"
    assert mine["database"] is None  # no staging MySQL configured in these settings
    assert Agent(client, token_two).assignment() is None
    # The other server cannot report on this environment either.
    assert Agent(client, token_two).step(env.id, "fetch", "running") == 409


def test_reports_move_the_environment_to_ready(
    client: FlaskClient, session: Session, staged: tuple[Environment, str, str]
) -> None:
    env, token, _ = staged
    agent = Agent(client, token)
    assert agent.step(env.id, "fetch", "running") == 200
    session.refresh(env)
    assert env.status is EnvironmentStatus.DEPLOYING
    for step in ("fetch", "checkout", "migrate", "start"):
        assert agent.step(env.id, step, "ok", log=f"{step} done") == 200
    assert agent.step(env.id, "health", "ok") == 200
    session.refresh(env)
    assert (env.status, env.deployed_sha) == (EnvironmentStatus.READY, SHA)
    steps = session.scalars(select(DeployStep.step).where(DeployStep.environment_id == env.id))
    assert list(steps) == ["fetch", "fetch", "checkout", "migrate", "start", "health"]


def test_a_failed_step_fails_the_deploy_with_its_log(
    client: FlaskClient, session: Session, staged: tuple[Environment, str, str]
) -> None:
    env, token, _ = staged
    agent = Agent(client, token)
    agent.step(env.id, "fetch", "running")
    huge = "x" * 100_000 + "\nERROR 1064: syntax error near 'DROP'"
    assert agent.step(env.id, "migrate", "failed", log=huge) == 200
    session.refresh(env)
    assert env.status is EnvironmentStatus.FAILED
    assert env.last_error is not None
    assert env.last_error.startswith("migrate failed:")
    assert "syntax error near 'DROP'" in env.last_error
    tail = session.scalars(select(DeployStep.log_tail).where(DeployStep.step == "migrate")).one()
    assert len(tail.encode()) <= 64 * 1024
    assert tail.endswith("near 'DROP'")


def test_malformed_reports_are_400(
    client: FlaskClient, staged: tuple[Environment, str, str]
) -> None:
    env, token, _ = staged
    headers = {"Authorization": f"Bearer {token}"}
    for body in (
        {"environment_id": env.id, "head_sha": SHA, "step": "dance", "status": "ok"},
        {"environment_id": env.id, "head_sha": "; rm -rf /", "step": "fetch", "status": "ok"},
        {"environment_id": "1", "head_sha": SHA, "step": "fetch", "status": "ok"},
        {"environment_id": env.id, "head_sha": SHA, "step": "fetch", "status": "meh"},
    ):
        response = client.post("/api/agent/steps", headers=headers, json=body)
        assert response.status_code == 400, body
        assert "error" in response.json
    response = client.post("/api/agent/steps", headers=headers, data="not json")
    assert response.status_code == 400


def test_heartbeat_records_the_agent(
    client: FlaskClient, session: Session, staged: tuple[Environment, str, str]
) -> None:
    _, token, _ = staged
    response = client.post(
        "/api/agent/heartbeat",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "agent_version": "0.1.0",
            "deployed_sha": SHA,
            "app_running": True,
            "environment_id": None,
        },
    )
    assert response.status_code == 200
    server = session.scalars(select(Server).where(Server.instance_id == "i-00000001")).one()
    assert (server.agent_version, server.deployed_sha) == ("0.1.0", SHA)
    assert server.last_heartbeat is not None


def _heartbeat(client: FlaskClient, token: str, environment_id: int | None, **extra: object) -> int:
    body: dict[str, object] = {
        "agent_version": "0.2.0",
        "deployed_sha": SHA,
        "app_running": True,
        "environment_id": environment_id,
        **extra,
    }
    return client.post(
        "/api/agent/heartbeat", headers={"Authorization": f"Bearer {token}"}, json=body
    ).status_code


LONG_AGO = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@pytest.fixture
def quiet_ready(
    app: Flask, session: Session, staged: tuple[Environment, str, str]
) -> tuple[Environment, str]:
    """The staged environment ready, untouched since LONG_AGO and warned of its expiry; the
    app's request clock says NOW."""
    app.extensions[CLOCK_KEY] = lambda: NOW
    env, token, _ = staged
    env.status = EnvironmentStatus.READY
    env.last_activity_at = LONG_AGO
    env.expiry_warned_at = LONG_AGO
    session.commit()
    return env, token


def _activity(session: Session, env: Environment) -> tuple[datetime | None, datetime | None]:
    session.expire_all()
    fresh = session.get_one(Environment, env.id)
    return _utc(fresh.last_activity_at), _utc(fresh.expiry_warned_at)


def _utc(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def test_a_heartbeat_of_an_app_in_use_is_activity_of_the_serving_environment(
    client: FlaskClient, session: Session, quiet_ready: tuple[Environment, str]
) -> None:
    env, token = quiet_ready
    events_before = session.scalars(select(Event.kind)).all()
    assert _heartbeat(client, token, env.id, app_in_use=True) == 200
    assert _activity(session, env) == (NOW, None)
    # No event: one a minute per reviewer would drown the log.
    assert session.scalars(select(Event.kind)).all() == events_before


@pytest.mark.parametrize("extra", [{"app_in_use": False}, {"app_in_use": None}, {}])
def test_an_app_not_in_use_or_an_agent_that_cannot_tell_touches_nothing(
    client: FlaskClient,
    session: Session,
    quiet_ready: tuple[Environment, str],
    extra: dict[str, object],
) -> None:
    env, token = quiet_ready
    assert _heartbeat(client, token, env.id, **extra) == 200
    assert _activity(session, env) == (LONG_AGO, LONG_AGO)
    server = session.get_one(Server, env.server_id)
    session.refresh(server)
    assert server.agent_version == "0.2.0"  # the heartbeat itself is still recorded


def test_a_sleeping_environment_is_not_touched_by_its_app_in_use(
    client: FlaskClient, session: Session, quiet_ready: tuple[Environment, str]
) -> None:
    env, token = quiet_ready
    env.status = EnvironmentStatus.SLEEPING
    session.commit()
    assert _heartbeat(client, token, env.id, app_in_use=True) == 200
    assert _activity(session, env) == (LONG_AGO, LONG_AGO)


def test_an_app_in_use_counts_only_for_the_environment_the_agent_reports_on(
    client: FlaskClient, session: Session, quiet_ready: tuple[Environment, str]
) -> None:
    env, token = quiet_ready
    # A late pass about the previous PR's app, or one that has no environment.
    assert _heartbeat(client, token, env.id + 1000, app_in_use=True) == 200
    assert _heartbeat(client, token, None, app_in_use=True) == 200
    assert _activity(session, env) == (LONG_AGO, LONG_AGO)


@pytest.mark.parametrize(
    "extra", [{"app_in_use": "yes"}, {"app_in_use": 1}, {"environment_id": "7"}]
)
def test_a_heartbeat_with_a_malformed_app_in_use_is_refused(
    client: FlaskClient,
    session: Session,
    quiet_ready: tuple[Environment, str],
    extra: dict[str, object],
) -> None:
    env, token = quiet_ready
    body = {"environment_id": env.id, "app_in_use": True, **extra}
    environment_id = body.pop("environment_id")
    assert _heartbeat(client, token, environment_id, **body) == 400  # type: ignore[arg-type]
    assert _activity(session, env) == (LONG_AGO, LONG_AGO)


def test_a_push_asks_for_redeploy_until_the_agent_starts_it(
    client: FlaskClient, session: Session, staged: tuple[Environment, str, str]
) -> None:
    env, token, _ = staged
    env.deploy_requested_at = datetime.now(UTC)
    session.commit()
    agent = Agent(client, token)
    assignment = agent.assignment()
    assert assignment is not None
    assert assignment["redeploy"] is True
    agent.step(env.id, "fetch", "running")
    assignment = agent.assignment()
    assert assignment is not None
    assert assignment["redeploy"] is False


def test_database_credentials_come_with_the_assignment_once_the_schema_is_ready(
    session: Session,
    session_factory: sessionmaker[Session],
    staged: tuple[Environment, str, str],
    settings: Settings,
    tmp_path: Path,
) -> None:
    env, token, _ = staged
    staging = make_settings(
        settings.controller.database_url,
        tmp_path,
        PULLRE_STAGING_MYSQL_URL="mysql://admin:pw@db.internal:3307",
    )
    app: Flask = create_app(staging, session_factory=session_factory)
    agent = Agent(app.test_client(), token)
    assignment = agent.assignment()
    assert assignment is not None
    database = assignment["database"]
    assert isinstance(database, dict)
    assert {k: database[k] for k in ("host", "port", "user", "name")} == {
        "host": "db.internal",
        "port": 3307,
        "user": "pr_1_12",
        "name": "pr_1_12",
    }
    password = database["password"]
    assert isinstance(password, str)
    assert len(password) >= 24
    assert password != "pw"
    assert agent.assignment() == assignment  # stable: derived, not random per call

    env.schema_ready_at = None  # "reset data" re-clones: no app against half a schema
    session.commit()
    assert agent.assignment() is None


def test_the_authors_own_schema_wins_over_the_base(session: Session) -> None:
    from pullre.environments.deploys import source_schema

    repo = Repository(owner="acme", name="shop", base_schema="shop_base")
    session.add_all([repo, GithubUser(login="alice", source_schema="alice_dev")])
    session.flush()
    alice = PullRequest(repository_id=repo.id, number=1, author_login="alice", head_sha=SHA)
    bob = PullRequest(repository_id=repo.id, number=2, author_login="bob", head_sha=SHA)
    assert source_schema(session, alice, repo) == "alice_dev"
    assert source_schema(session, bob, repo) == "shop_base"
    repo.base_schema = None
    assert source_schema(session, bob, repo) is None


def test_a_heartbeat_says_who_runs_pr_code_and_a_dirty_box_stays_dirty(
    client: FlaskClient, session: Session, staged: tuple[Environment, str, str]
) -> None:
    env, token, _ = staged
    server = session.get_one(Server, env.server_id)
    assert _heartbeat(client, token, env.id, runs_as="same_user") == 200
    session.refresh(server)
    assert (server.runs_as, server.dirty_reason) == ("same_user", None)

    left = "process(es) of pullre-app still alive after 5 s: 4242 (sleep)"
    assert _heartbeat(client, token, env.id, runs_as="app_user", dirty=left) == 200
    session.refresh(server)
    assert (server.runs_as, server.dirty_reason) == ("app_user", left)
    assert session.scalars(select(Event.kind).where(Event.kind == "server.dirty")).all() == [
        "server.dirty"
    ]
    # The agent cleaned up later: the mark stays until an admin clears it.
    assert _heartbeat(client, token, env.id, runs_as="app_user", dirty=None) == 200
    session.refresh(server)
    assert server.dirty_reason == left

    assert _heartbeat(client, token, env.id, runs_as="root, trust me") == 400
