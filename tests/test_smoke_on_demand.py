"""Deep smoke checks on demand, end to end: the real controller asks, the real agent runs them."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from pullre.agent import supervisor
from pullre.environments import actions
from pullre.models import (
    DeployStep,
    Environment,
    EnvironmentStatus,
    PullRequest,
    StepStatus,
    utcnow,
)
from tests.agent_fixtures import (
    Agent,
    OriginRepo,
    assign_on_controller,
    pullre_toml,
    same_user_settings,
)
from tests.web_fixtures import LiveServer

CHECKS = """
[[smoke]]
name = "home page"
type = "http"
path = "/"

[[smoke]]
name = "reports page"
tier = "deep"
type = "http"
path = "/reports"
contains = "quarterly"
"""


def test_deep_checks_run_on_the_running_app_and_leave_it_ready(
    live_server: LiveServer, git_origin: OriginRepo, tmp_path: Path
) -> None:
    sha = git_origin.commit({".pullre.toml": pullre_toml(git_origin.port) + CHECKS})
    git_origin.open_pr(5, sha)
    assigned = assign_on_controller(
        live_server.session_factory, git_origin, 5, sha, instance_id="i-000000d1"
    )
    pull_id, environment_id, token = assigned.pull_id, assigned.environment_id, assigned.token

    def steps() -> list[DeployStep]:
        with live_server.session_factory() as session:
            return list(
                session.scalars(
                    select(DeployStep)
                    .where(DeployStep.environment_id == environment_id)
                    .order_by(DeployStep.id)
                )
            )

    settings = same_user_settings(live_server.url, token, tmp_path / "a")
    agent = Agent(settings=settings, environ={})
    try:
        assert agent.run() == 0
        deployed_pid = agent.app_pid()
        first = steps()
        assert (first[-1].step, first[-1].status) == ("smoke", StepStatus.OK)
        assert first[-1].details is not None
        assert first[-1].details["tier"] == "fast"

        assert agent.run() == 0  # nothing asked: nothing run
        assert len(steps()) == len(first)

        with live_server.session_factory() as session:
            found = session.get_one(PullRequest, pull_id)
            actions.request_smoke(session, found, actor="ann", clock=utcnow)
            session.commit()
        assert agent.run() == 0
        assert agent.app_pid() == deployed_pid, "deep checks must not redeploy"
    finally:
        app = agent.state().app
        if app is not None:
            supervisor.stop(app.pid, app.start_time, timeout=5)

    new = steps()[len(first) :]
    assert [(s.step, s.status) for s in new] == [
        ("smoke", StepStatus.RUNNING),
        ("smoke", StepStatus.FAILED),
    ]
    results = new[-1].details
    assert results is not None
    assert (results["tier"], results["status"], results["failed"]) == (
        "deep",
        "fail",
        ["reports page"],
    )
    assert sorted((c["name"], c["tier"]) for c in results["checks"]) == [
        ("home page", "fast"),
        ("reports page", "deep"),
    ]
    with live_server.session_factory() as session:
        environment = session.get_one(Environment, environment_id)
        assert environment.status is EnvironmentStatus.READY
        assert environment.smoke_requested_at is None
        assert environment.last_error is None
