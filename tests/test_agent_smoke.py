"""Smoke checks in a deploy: the agent runs the fast tier, the controller stores the results."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from pullre.agent import supervisor
from pullre.environments import tokens
from pullre.models import (
    DeployStep,
    Environment,
    EnvironmentStatus,
    StepStatus,
)
from pullre.servers.registry import register_server
from pullre.smoke import results as smoke_results
from tests.agent_fixtures import (
    Agent,
    AssignPr,
    FakeController,
    OriginRepo,
    assign_on_controller,
    pullre_toml,
    same_user_settings,
    stage_environment,
)
from tests.web_fixtures import LiveServer

PASSING = """
[[smoke]]
name = "home page"
type = "http"
path = "/"
regex = "^ok [0-9a-f]{40}$"

[[smoke]]
name = "checkout has the app"
type = "command"
command = ["test", "-f", "app.py"]

[[smoke]]
name = "deep only"
tier = "deep"
type = "http"
path = "/not-run-after-deploy"
"""

FAILING = """
[[smoke]]
name = "home page"
type = "http"
path = "/"

[[smoke]]
name = "missing page"
type = "http"
path = "/missing"
contains = "welcome"
"""


def deploy(
    agent: Agent,
    fake_controller: FakeController,
    git_origin: OriginRepo,
    smoke_toml: str,
    **kw: Any,
) -> str:
    toml = pullre_toml(git_origin.port) + smoke_toml
    sha = AssignPr(fake_controller, git_origin)(9, {".pullre.toml": toml}, **kw)
    assert agent.run() == 0
    return sha


def smoke_reports(fake_controller: FakeController) -> list[dict[str, Any]]:
    return [r.body for r in fake_controller.step_requests() if r.body["step"] == "smoke"]


def test_passing_fast_checks_report_smoke_ok_with_results(
    agent: Agent, fake_controller: FakeController, git_origin: OriginRepo
) -> None:
    sha = deploy(agent, fake_controller, git_origin, PASSING)

    running, done = smoke_reports(fake_controller)
    assert (running["status"], done["status"]) == ("running", "ok")
    assert "results" not in running
    results = done["results"]
    assert smoke_results.validate_results(results) is None
    assert (results["status"], results["tier"], results["failed"]) == ("pass", "fast", [])
    assert results["counts"] == {"pass": 2, "warn": 0, "fail": 0, "error": 0, "timeout": 0}
    assert sorted(c["name"] for c in results["checks"]) == ["checkout has the app", "home page"]
    assert "PASS" in done["log"]
    assert "home page" in done["log"]
    assert "smoke: 2 fast, 1 deep" in fake_controller.step_log("checkout", "ok")
    assert fake_controller.heartbeats()[-1]["deployed_sha"] == sha


def test_a_failing_check_fails_the_smoke_step_but_leaves_the_app_up(
    agent: Agent, fake_controller: FakeController, git_origin: OriginRepo
) -> None:
    sha = deploy(agent, fake_controller, git_origin, FAILING)

    assert fake_controller.steps()[-2:] == [("smoke", "running"), ("smoke", "failed")]
    results = smoke_reports(fake_controller)[-1]["results"]
    assert results["status"] == "fail"
    assert results["failed"] == ["missing page"]
    assert "-> 404" in fake_controller.step_log("smoke", "failed")
    # The app keeps answering (easier to diagnose), and a second pass does not redeploy it.
    assert agent.get(git_origin.port) == f"ok {sha}"
    fake_controller.clear()
    assert agent.run() == 0
    assert fake_controller.steps() == []


def test_deep_checks_run_after_the_deploy_when_the_repository_asks(
    agent: Agent, fake_controller: FakeController, git_origin: OriginRepo, assign_pr: AssignPr
) -> None:
    toml = pullre_toml(git_origin.port, deep_smoke_after_deploy=True) + PASSING
    sha = assign_pr(9, {".pullre.toml": toml})
    assert agent.run() == 0

    fast, deep = [r for r in smoke_reports(fake_controller) if r["status"] != "running"]
    assert (fast["status"], fast["results"]["tier"]) == ("ok", "fast")
    # The deep check's page does not exist: shown as failed, labelled deep, app still up.
    assert (deep["status"], deep["results"]["tier"]) == ("failed", "deep")
    assert deep["results"]["failed"] == ["deep only"]
    assert agent.get(git_origin.port) == f"ok {sha}"


def test_a_deep_flag_that_is_not_a_boolean_fails_the_checkout(
    agent: Agent, fake_controller: FakeController, git_origin: OriginRepo, assign_pr: AssignPr
) -> None:
    assign_pr(9, {".pullre.toml": pullre_toml(git_origin.port, deep_smoke_after_deploy="yes")})
    agent.run()
    assert ("checkout", "failed") in fake_controller.steps()
    assert "must be true or false" in fake_controller.step_log("checkout", "failed")


def test_an_invalid_smoke_entry_fails_smoke_not_the_checkout(
    agent: Agent, fake_controller: FakeController, git_origin: OriginRepo
) -> None:
    deploy(agent, fake_controller, git_origin, '[[smoke]]\nname = "typo"\ntype = "htpp"\n')

    assert ("checkout", "ok") in fake_controller.steps()
    assert fake_controller.steps()[-1] == ("smoke", "failed")
    results = smoke_reports(fake_controller)[-1]["results"]
    assert results["status"] == "error"
    assert results["checks"][0]["result"] == "error"
    assert "type must be one of" in results["checks"][0]["message"]


def test_sql_checks_use_the_prs_database(
    agent: Agent,
    fake_controller: FakeController,
    git_origin: OriginRepo,
    pr_database: dict[str, Any],
) -> None:
    checks = (
        '[[smoke]]\nname = "db"\ntype = "sql"\nquery = "SELECT DATABASE()"\n'
        f'expect = "{pr_database["name"]}"\n'
    )
    deploy(agent, fake_controller, git_origin, checks, database=pr_database)

    assert fake_controller.steps()[-1] == ("smoke", "ok"), fake_controller.step_log(
        "smoke", "failed"
    )


# -- the controller's side -----------------------------------------------------------------------

SHA = "c" * 40


@pytest.fixture
def staged(session: Session) -> tuple[int, dict[str, str]]:
    server, token = register_server(session, "i-000000c1", "https://c1.example", "c1")
    env = stage_environment(
        session,
        server,
        4,
        SHA,
        clone_url="/srv/git/shop.git",
        head_ref="f",
        status=EnvironmentStatus.DEPLOYING,
    )
    own = tokens.issue(env)  # as the assignment hands it out
    session.commit()
    return env.id, {"Authorization": f"Bearer {token}", tokens.HEADER: own}


def results_body(status: str = "pass") -> dict[str, Any]:
    failing = status != "pass"
    return {
        "status": status,
        "tier": "fast",
        "counts": {"pass": 1, "warn": 0, "fail": int(failing), "error": 0, "timeout": 0},
        "failed": ["db"] if failing else [],
        "time_ms": 40,
        "checks": [
            {
                "name": "home",
                "tier": "fast",
                "type": "http",
                "result": "pass",
                "duration_ms": 12,
                "message": "GET / -> 200",
            },
            *(
                [
                    {
                        "name": "db",
                        "tier": "fast",
                        "type": "smoketest",
                        "result": "fail",
                        "duration_ms": 30,
                        "message": "django-smoketest FAIL",
                        "tests": [{"name": "a.smoke.T.test_x", "result": "fail", "message": ""}],
                    }
                ]
                if failing
                else []
            ),
        ],
    }


def post_step(
    client: FlaskClient, staged: tuple[int, dict[str, str]], step: str, status: str, **extra: Any
) -> tuple[int, Any]:
    environment_id, headers = staged
    body = {"environment_id": environment_id, "head_sha": SHA, "step": step, "status": status}
    response = client.post("/api/agent/steps", headers=headers, json={**body, **extra})
    return response.status_code, response.json


def stored(session: Session, environment_id: int) -> list[tuple[str, str, Any]]:
    session.expire_all()
    rows = session.scalars(
        select(DeployStep)
        .where(DeployStep.environment_id == environment_id)
        .order_by(DeployStep.id)
    )
    return [(row.step, row.status.value, row.details) for row in rows]


def test_the_controller_stores_smoke_results(
    client: FlaskClient, session: Session, staged: tuple[int, dict[str, str]]
) -> None:
    assert post_step(client, staged, "smoke", "ok", log="PASS", results=results_body())[0] == 200
    assert stored(session, staged[0]) == [("smoke", "ok", results_body())]


def test_a_failed_smoke_step_fails_the_environment(
    client: FlaskClient, session: Session, staged: tuple[int, dict[str, str]]
) -> None:
    body = results_body("fail")
    code, _ = post_step(client, staged, "smoke", "failed", log="FAIL db", results=body)
    assert code == 200
    env = session.get_one(Environment, staged[0])
    session.refresh(env)
    assert env.status is EnvironmentStatus.FAILED
    assert env.last_error is not None
    assert env.last_error.startswith("smoke failed:")
    assert stored(session, staged[0])[0][2]["checks"][1]["tests"][0]["name"] == "a.smoke.T.test_x"


@pytest.mark.parametrize(
    ("step", "results", "words"),
    [
        ("smoke", ["not", "an", "object"], "results must be an object"),
        ("smoke", {**results_body(), "status": "fail"}, "does not agree"),
        ("smoke", {**results_body(), "extra": 1}, "exactly status"),
        ("health", results_body(), "only taken with the smoke step"),
        (
            "smoke",
            {
                **results_body(),
                "checks": [
                    {**results_body()["checks"][0], "message": "x" * 70_000},
                ],
            },
            "at most 65536 bytes",
        ),
    ],
)
def test_bad_results_are_refused_and_nothing_is_stored(
    client: FlaskClient,
    session: Session,
    staged: tuple[int, dict[str, str]],
    step: str,
    results: Any,
    words: str,
) -> None:
    code, answer = post_step(client, staged, step, "ok", results=results)
    assert code == 400
    assert words in answer["error"]
    assert stored(session, staged[0]) == []


def test_results_travel_from_the_agent_to_the_real_controller(
    live_server: LiveServer, git_origin: OriginRepo, tmp_path: Path
) -> None:
    sha = git_origin.commit({".pullre.toml": pullre_toml(git_origin.port) + FAILING})
    git_origin.open_pr(21, sha)
    assigned = assign_on_controller(
        live_server.session_factory, git_origin, 21, sha, instance_id="i-000000c2"
    )
    token, environment_id = assigned.token, assigned.environment_id

    settings = same_user_settings(live_server.url, token, tmp_path / "a")
    agent = Agent(settings=settings, environ={})
    try:
        assert agent.run() == 0
    finally:
        app = agent.state().app
        if app is not None:
            supervisor.stop(app.pid, app.start_time, timeout=5)

    with live_server.session_factory() as session:
        environment = session.get_one(Environment, environment_id)
        assert environment.status is EnvironmentStatus.FAILED
        last = session.scalars(
            select(DeployStep)
            .where(DeployStep.environment_id == environment_id)
            .order_by(DeployStep.id.desc())
        ).first()
        assert last is not None
        assert (last.step, last.status) == ("smoke", StepStatus.FAILED)
        assert last.details is not None
        assert last.details["failed"] == ["missing page"]
        assert last.details["counts"]["pass"] == 1
        assert environment.last_error is not None
        assert "missing page" in environment.last_error


def test_the_agent_bundle_runs_alone_on_the_standard_library(tmp_path: Path) -> None:
    """What a staging box gets: client.py, pullre/agent and pullre/smoke, nothing else."""
    root = Path(__file__).parent.parent
    bundle = tmp_path / "bundle"
    for package in ("agent", "smoke"):
        shutil.copytree(root / "pullre" / package, bundle / "pullre" / package)
    shutil.copy(root / "pullre" / "__init__.py", bundle / "pullre" / "__init__.py")
    shutil.copy(root / "client.py", bundle / "client.py")
    code = (
        "import sys; sys.path.insert(0, '.');"
        " import client, pullre.smoke.runner, pullre.agent.deploy;"
        " print(sorted(m for m in sys.modules if m.startswith('pullre.smoke')))"
    )
    # -I -S: no site-packages, so any third-party import fails here as it would on the box.
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code],
        cwd=bundle,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "pullre.smoke.formats" in result.stdout
