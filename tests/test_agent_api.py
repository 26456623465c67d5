"""The agent API: one server's token sees only its own assignment; reports about an environment
need that environment's token as well, and move its status."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from pullre.config import Settings
from pullre.environments import tokens
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
from pullre.smoke import runner as smoke
from pullre.web import create_app
from pullre.web.request_clock import CLOCK_KEY
from tests.agent_fixtures import stage_environment
from tests.web_fixtures import make_settings

SHA = "a" * 40
NEW_SHA = "b" * 40
ENVIRONMENT_HEADER = "X-Pullre-Environment-Token"


class Agent:
    """An agent as the real one behaves: it keeps the environment token its assignment gave
    and sends it with every call."""

    def __init__(self, client: FlaskClient, token: str) -> None:
        self.client, self.token = client, token
        self.environment_token: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"}
        if self.environment_token:
            headers[ENVIRONMENT_HEADER] = self.environment_token
        return headers

    def assignment(self) -> dict[str, object] | None:
        response = self.client.get("/api/agent/assignment", headers=self.headers)
        assert response.status_code == 200, response.json
        found: dict[str, object] | None = response.json["assignment"]  # type: ignore[index]
        if found is not None and isinstance(found["environment_token"], str):
            self.environment_token = found["environment_token"]
        return found

    def step(
        self, environment_id: int, step: str, status: str, log: str = "", sha: str = SHA
    ) -> int:
        if self.environment_token is None:
            self.assignment()
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
    # The other server cannot report on this environment either, even with its token.
    other = Agent(client, token_two)
    other.environment_token = Agent(client, token_one).assignment()["environment_token"]  # type: ignore[index,assignment]
    assert other.step(env.id, "fetch", "running") == 401


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


def _heartbeat(
    client: FlaskClient,
    token: str,
    environment_id: int | None,
    environment_token: str | None = None,
    **extra: object,
) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    if environment_token is not None:
        headers[ENVIRONMENT_HEADER] = environment_token
    body: dict[str, object] = {
        "agent_version": "0.2.0",
        "deployed_sha": SHA,
        "app_running": True,
        "environment_id": environment_id,
        **extra,
    }
    return client.post("/api/agent/heartbeat", headers=headers, json=body).status_code


LONG_AGO = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@pytest.fixture
def quiet_ready(
    app: Flask, session: Session, staged: tuple[Environment, str, str]
) -> tuple[Environment, str, str]:
    """The staged environment ready, untouched since LONG_AGO and warned of its expiry, with
    its server's and its own token; the app's request clock says NOW."""
    app.extensions[CLOCK_KEY] = lambda: NOW
    env, token, _ = staged
    env.status = EnvironmentStatus.READY
    env.last_activity_at = LONG_AGO
    env.expiry_warned_at = LONG_AGO
    environment_token = tokens.issue(env)
    session.commit()
    return env, token, environment_token


def _activity(session: Session, env: Environment) -> tuple[datetime | None, datetime | None]:
    session.expire_all()
    fresh = session.get_one(Environment, env.id)
    return _utc(fresh.last_activity_at), _utc(fresh.expiry_warned_at)


def _utc(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def test_a_heartbeat_of_an_app_in_use_is_activity_of_the_serving_environment(
    client: FlaskClient, session: Session, quiet_ready: tuple[Environment, str, str]
) -> None:
    env, token, own = quiet_ready
    events_before = session.scalars(select(Event.kind)).all()
    assert _heartbeat(client, token, env.id, own, app_in_use=True) == 200
    assert _activity(session, env) == (NOW, None)
    # No event: one a minute per reviewer would drown the log.
    assert session.scalars(select(Event.kind)).all() == events_before


@pytest.mark.parametrize("extra", [{"app_in_use": False}, {"app_in_use": None}, {}])
def test_an_app_not_in_use_or_an_agent_that_cannot_tell_touches_nothing(
    client: FlaskClient,
    session: Session,
    quiet_ready: tuple[Environment, str, str],
    extra: dict[str, object],
) -> None:
    env, token, own = quiet_ready
    assert _heartbeat(client, token, env.id, own, **extra) == 200
    assert _activity(session, env) == (LONG_AGO, LONG_AGO)
    server = session.get_one(Server, env.server_id)
    session.refresh(server)
    assert server.agent_version == "0.2.0"  # the heartbeat itself is still recorded


def test_a_sleeping_environment_is_not_touched_by_its_app_in_use(
    client: FlaskClient, session: Session, quiet_ready: tuple[Environment, str, str]
) -> None:
    env, token, own = quiet_ready
    env.status = EnvironmentStatus.SLEEPING
    session.commit()
    assert _heartbeat(client, token, env.id, own, app_in_use=True) == 200
    assert _activity(session, env) == (LONG_AGO, LONG_AGO)


def test_an_app_in_use_counts_only_for_the_environment_the_agent_reports_on(
    client: FlaskClient, session: Session, quiet_ready: tuple[Environment, str, str]
) -> None:
    env, token, own = quiet_ready
    # A late pass about the previous PR's app (refused: it has no token of that one), or one
    # that has no environment (the server token is enough).
    assert _heartbeat(client, token, env.id + 1000, own, app_in_use=True) == 401
    assert _heartbeat(client, token, None, app_in_use=True) == 200
    assert _activity(session, env) == (LONG_AGO, LONG_AGO)


@pytest.mark.parametrize(
    "extra", [{"app_in_use": "yes"}, {"app_in_use": 1}, {"environment_id": "7"}]
)
def test_a_heartbeat_with_a_malformed_app_in_use_is_refused(
    client: FlaskClient,
    session: Session,
    quiet_ready: tuple[Environment, str, str],
    extra: dict[str, object],
) -> None:
    env, token, own = quiet_ready
    body = {"environment_id": env.id, "app_in_use": True, **extra}
    environment_id = body.pop("environment_id")
    assert _heartbeat(client, token, environment_id, own, **body) == 400  # type: ignore[arg-type]
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
    again = agent.assignment()  # stable: derived, not random per call
    assert again == {**assignment, "environment_token": None}  # the agent keeps its token

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


# -- environment tokens -----------------------------------------------------------------------


def _smoke_pass(agent: Agent, environment_id: int) -> int:
    """A 3/3 smoke pass, as forged by PR code that found a token."""
    passed = (smoke.Result(f"c{i}", "fast", "http", "pass", 1, "") for i in range(3))
    report = smoke.Report(tier="fast", results=tuple(passed), time_ms=3)
    return agent.client.post(
        "/api/agent/steps",
        headers=agent.headers,
        json={
            "environment_id": environment_id,
            "head_sha": SHA,
            "step": "smoke",
            "status": "ok",
            "results": report.to_json(),
        },
    ).status_code


def test_the_server_token_alone_cannot_report_on_an_environment(
    client: FlaskClient, session: Session, staged: tuple[Environment, str, str]
) -> None:
    env, token, _ = staged
    server_only = Agent(client, token)
    server_only.environment_token = ""  # never fetched: no environment token to send
    for step, status in (("fetch", "running"), ("health", "ok")):
        response = client.post(
            "/api/agent/steps",
            headers=server_only.headers,
            json={"environment_id": env.id, "head_sha": SHA, "step": step, "status": status},
        )
        assert response.status_code == 401
        assert ENVIRONMENT_HEADER in response.json["error"]
    assert _smoke_pass(server_only, env.id) == 401
    assert _heartbeat(client, token, env.id, "not-the-token", app_in_use=True) == 401
    session.refresh(env)
    assert env.status is EnvironmentStatus.PROVISIONING
    assert (
        session.scalars(select(DeployStep).where(DeployStep.environment_id == env.id)).all() == []
    )


def test_a_released_environments_token_is_refused_and_the_next_stay_gets_a_new_one(
    client: FlaskClient, session: Session, staged: tuple[Environment, str, str]
) -> None:
    env, token, _ = staged
    agent = Agent(client, token)
    first = agent.assignment()
    assert first is not None
    assert isinstance(first["environment_token"], str)
    old_token = first["environment_token"]
    session.refresh(env)
    assert env.agent_token_hash is not None
    assert old_token not in env.agent_token_hash  # only its hash is kept
    assert agent.step(env.id, "fetch", "running") == 200

    # Released as the reconcile pass does it (pool_operations.release), then the PR's next
    # stay lands on the same server.
    env.status, env.server_id = EnvironmentStatus.RELEASED, None
    tokens.revoke(env)
    server = session.scalars(select(Server).where(Server.instance_id == "i-00000001")).one()
    session.flush()
    next_stay = Environment(
        pull_request_id=env.pull_request_id,
        server_id=server.id,
        status=EnvironmentStatus.PROVISIONING,
        schema_ready_at=datetime.now(UTC),
    )
    session.add(next_stay)
    session.commit()

    # The old token, held by whatever read it on the box, is refused for either stay.
    for environment_id in (env.id, next_stay.id):
        assert agent.step(environment_id, "health", "ok") == 401
        assert _smoke_pass(agent, environment_id) == 401
        assert _heartbeat(client, token, environment_id, old_token, app_in_use=True) == 401
    session.refresh(next_stay)
    assert next_stay.status is EnvironmentStatus.PROVISIONING

    second = agent.assignment()  # presents the old token: not this stay's, so a new one
    assert second is not None
    assert second["environment_id"] == next_stay.id
    assert second["environment_token"] not in {None, old_token}
    assert agent.step(next_stay.id, "fetch", "running") == 200
    assert _heartbeat(client, token, next_stay.id, agent.environment_token) == 200
    assert agent.assignment()["environment_token"] is None  # type: ignore[index]


def test_a_heartbeat_says_who_runs_pr_code_and_a_dirty_box_stays_dirty(
    client: FlaskClient, session: Session, staged: tuple[Environment, str, str]
) -> None:
    env, token, _ = staged
    server = session.get_one(Server, env.server_id)
    # About the box, not an environment: the server token alone may say it.
    assert _heartbeat(client, token, None, runs_as="same_user") == 200
    session.refresh(server)
    assert (server.runs_as, server.dirty_reason) == ("same_user", None)

    left = "process(es) of pullre-app still alive after 5 s: 4242 (sleep)"
    assert _heartbeat(client, token, None, runs_as="app_user", dirty=left) == 200
    session.refresh(server)
    assert (server.runs_as, server.dirty_reason) == ("app_user", left)
    assert session.scalars(select(Event.kind).where(Event.kind == "server.dirty")).all() == [
        "server.dirty"
    ]
    # The agent cleaned up later: the mark stays until an admin clears it.
    assert _heartbeat(client, token, None, runs_as="app_user", dirty=None) == 200
    session.refresh(server)
    assert server.dirty_reason == left

    assert _heartbeat(client, token, None, runs_as="root, trust me") == 400
