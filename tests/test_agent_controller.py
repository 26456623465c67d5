"""The agent against the real controller: the Flask app in cheroot, a server with its token."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from pullre.agent import supervisor
from pullre.environments import tokens
from pullre.models import (
    DeployStep,
    Environment,
    EnvironmentStatus,
    Server,
    StepStatus,
)
from tests.agent_fixtures import Agent, OriginRepo, assign_on_controller, same_user_settings
from tests.web_fixtures import LiveServer


def test_the_agent_deploys_what_the_real_controller_assigns(
    live_server: LiveServer,
    git_origin: OriginRepo,
    tmp_path: Path,
) -> None:
    sha = git_origin.fork_commit({"README": "a fork's change\n"})
    git_origin.open_pr(12, sha)
    assigned = assign_on_controller(
        live_server.session_factory,
        git_origin,
        12,
        sha,
        instance_id="i-0000000a",
        title="x; touch /tmp/pwned",
    )
    environment_id, server_id, token = (
        assigned.environment_id,
        assigned.server_id,
        assigned.token,
    )

    settings = same_user_settings(live_server.url, token, tmp_path / "agent")
    agent = Agent(settings=settings, environ={})
    try:
        assert agent.run() == 0
        assert agent.get(git_origin.port) == f"ok {sha}"

        with live_server.session_factory() as session:
            environment = session.get_one(Environment, environment_id)
            assert environment.status is EnvironmentStatus.READY
            assert environment.deployed_sha == sha
            steps = session.scalars(
                select(DeployStep)
                .where(DeployStep.environment_id == environment_id)
                .order_by(DeployStep.id)
            ).all()
            assert [(s.step, s.status.value) for s in steps][-3:] == [
                ("health", "running"),
                ("health", "ok"),
                ("smoke", "skipped"),
            ]
            assert {s.head_sha for s in steps} == {sha}
            # The environment's own token came with the assignment; the agent keeps it.
            own = agent.state().environment_token
            assert own is not None
            assert environment.agent_token_hash == tokens.hash_token(own)
            server = session.get_one(Server, server_id)
            assert server.agent_version == "0.1.0"
            assert server.deployed_sha == sha
            assert server.last_heartbeat is not None

            # "Reset data": the controller asks for a fresh deploy of the same sha.
            environment.deploy_requested_at = datetime.now(UTC)
            session.commit()
        pid = agent.app_pid()

        assert agent.run() == 0
        assert agent.app_pid() != pid
        assert agent.run() == 0  # the request was answered once, not on every pass
        with live_server.session_factory() as session:
            environment = session.get_one(Environment, environment_id)
            assert environment.deploy_requested_at is None
            assert environment.status is EnvironmentStatus.READY
            fetches = session.scalars(
                select(DeployStep.id).where(
                    DeployStep.environment_id == environment_id,
                    DeployStep.step == "fetch",
                    DeployStep.status == StepStatus.RUNNING,
                )
            ).all()
            assert len(fetches) == 2
            # Presented on every ask, so it was kept rather than replaced.
            assert agent.state().environment_token == own
            assert environment.agent_token_hash == tokens.hash_token(own)

            # The PR is released: the controller has no assignment for this server any more.
            environment.status = EnvironmentStatus.RELEASED
            session.commit()
        pid = agent.app_pid()

        assert agent.run() == 0
        assert not agent.answers(git_origin.port)
        assert agent.state().app is None
        assert agent.state().environment_token is None
        with live_server.session_factory() as session:
            assert session.get_one(Server, server_id).deployed_sha is None
        assert not supervisor.is_alive(pid, None)
    finally:
        app = agent.state().app
        if app is not None:
            supervisor.stop(app.pid, app.start_time, timeout=5)


def test_a_reviewer_using_the_staging_app_is_activity_on_the_controller(
    live_server: LiveServer,
    git_origin: OriginRepo,
    tmp_path: Path,
) -> None:
    sha = git_origin.commit({"README": "pr 14\n"})
    git_origin.open_pr(14, sha)
    assigned = assign_on_controller(
        live_server.session_factory, git_origin, 14, sha, instance_id="i-0000000b"
    )
    settings = same_user_settings(live_server.url, assigned.token, tmp_path / "agent")
    agent = Agent(settings=settings, environ={})
    long_ago = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    try:
        assert agent.run() == 0
        with live_server.session_factory() as session:
            environment = session.get_one(Environment, assigned.environment_id)
            assert environment.status is EnvironmentStatus.READY
            environment.last_activity_at = long_ago
            environment.expiry_warned_at = long_ago
            session.commit()

        assert agent.run() == 0  # nobody but the agent's own checks: untouched
        with live_server.session_factory() as session:
            environment = session.get_one(Environment, assigned.environment_id)
            assert environment.last_activity_at is not None
            assert environment.last_activity_at.replace(tzinfo=UTC) == long_ago

        # A reviewer's browser holds a connection to the staging app during the next pass.
        with socket.create_connection(("127.0.0.1", git_origin.port)) as browser:
            browser.sendall(b"GET / HTTP/1.1\r\nHost: stage\r\n")
            assert agent.run() == 0

        with live_server.session_factory() as session:
            environment = session.get_one(Environment, assigned.environment_id)
            assert environment.last_activity_at is not None
            assert environment.last_activity_at.replace(tzinfo=UTC) > long_ago
            assert environment.expiry_warned_at is None
            assert environment.status is EnvironmentStatus.READY
    finally:
        app = agent.state().app
        if app is not None:
            supervisor.stop(app.pid, app.start_time, timeout=5)
