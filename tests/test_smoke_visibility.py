"""Smoke results where people look: the PR page, the dashboard, the API and GitHub."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from pullre.environments import actions
from pullre.environments.agent_reports import record_step
from pullre.models import (
    DeployStep,
    Environment,
    EnvironmentStatus,
    Event,
    PullRequest,
    Role,
    StepStatus,
    utcnow,
)
from pullre.reconcile.run import run_pass
from tests.page_seeds import NOW, add_pull, add_repository, add_server
from tests.reconcile_fixtures import NAME, OWNER, World
from tests.web_fixtures import MakeUser, csrf_token

EVIL = "<script>alert(1)</script>"


def check(name: str, result: str, tier: str = "fast", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "tier": tier,
        "type": "http",
        "result": result,
        "duration_ms": 12,
        "message": f"GET / -> {'200' if result == 'pass' else '500 <b>'}",
        **extra,
    }


def results(*checks: dict[str, Any], tier: str = "fast") -> dict[str, Any]:
    kinds = ("pass", "warn", "fail", "error", "timeout")
    counts = {kind: sum(c["result"] == kind for c in checks) for kind in kinds}
    failed = [c["name"] for c in checks if c["result"] in {"fail", "error", "timeout"}]
    status = "fail" if counts["fail"] or counts["timeout"] else "error" if failed else "pass"
    return {
        "status": status,
        "tier": tier,
        "counts": counts,
        "failed": failed,
        "time_ms": 345,
        "checks": list(checks),
    }


FAILING = results(
    check("home page", "pass"),
    check(
        EVIL,
        "fail",
        type="smoketest",
        tests=[{"name": "shop.smoke.test_<cart>", "result": "fail", "message": "boom"}],
    ),
)
PASSING = results(check("home page", "pass"), check("api", "pass"))


def ready_pull(session: Session, number: int = 7) -> tuple[PullRequest, Environment]:
    repo = add_repository(session)
    pull = add_pull(
        session, repo, number, status=EnvironmentStatus.READY, server=add_server(session, number)
    )
    return pull, pull.environments[-1]


def smoke_step(
    session: Session,
    env: Environment,
    details: dict[str, Any] | None,
    *,
    status: StepStatus = StepStatus.OK,
    sha: str | None = None,
    minutes: int = 1,
) -> None:
    session.add(
        DeployStep(
            environment_id=env.id,
            head_sha=sha or env.deployed_sha or "",
            step="smoke",
            status=status,
            log_tail="log",
            details=details,
            reported_at=NOW + timedelta(minutes=minutes),
        )
    )
    session.flush()


# -- PR page and dashboard ----------------------------------------------------------------------


def test_the_pr_page_shows_every_check_of_the_latest_results_escaped(
    member_client: FlaskClient, session: Session
) -> None:
    pull, env = ready_pull(session)
    smoke_step(session, env, PASSING, minutes=1)
    smoke_step(session, env, FAILING, status=StepStatus.FAILED, minutes=2)
    smoke_step(session, env, PASSING, sha="e" * 40, minutes=3)  # another sha: not shown
    smoke_step(session, env, None, status=StepStatus.RUNNING, minutes=4)  # still running
    session.commit()

    page = member_client.get(f"/pulls/{pull.id}").get_data(as_text=True)
    section = page[page.index('<section id="smoke"') : page.index("Latest deploy")]
    assert "<script>alert" not in page
    assert html.escape(EVIL) in section
    assert 'class="badge smoke-failed">fail<' in section
    assert "fast tier on" in section
    assert "345 ms" in section
    assert "1 pass" in section
    assert "1 fail" in section
    rows = re.findall(r'<tr class="smoke-check smoke-check-(\w+)">(.*?)</tr>', section, re.S)
    assert [kind for kind, _ in rows] == ["pass", "fail"]
    failing_row = rows[1][1]
    assert "smoketest" in failing_row
    assert "GET / -&gt; 500 &lt;b&gt;" in failing_row
    assert "<code>shop.smoke.test_&lt;cart&gt;</code> fail: boom" in failing_row
    assert "12 ms" in failing_row


def test_the_pr_page_without_results_says_so(member_client: FlaskClient, session: Session) -> None:
    pull, _ = ready_pull(session)
    session.commit()
    page = member_client.get(f"/pulls/{pull.id}").get_data(as_text=True)
    assert "No smoke results for the deployed commit yet." in page


def test_the_dashboard_shows_counts_and_the_first_failing_name(
    member_client: FlaskClient, session: Session
) -> None:
    pull, env = ready_pull(session, 7)
    smoke_step(session, env, FAILING, status=StepStatus.FAILED)
    other = add_pull(
        session,
        pull.repository,
        8,
        status=EnvironmentStatus.READY,
        server=add_server(session, 8),
    )
    smoke_step(session, other.environments[-1], PASSING)
    session.commit()

    page = member_client.get("/").get_data(as_text=True)
    assert "<script>alert" not in page
    # The failing check ran the app's own tests: the failing test is named, not the check.
    assert 'class="badge smoke-failed">fail 1/2 (shop.smoke.test_&lt;cart&gt;)<' in page
    assert 'class="badge smoke-ok">pass 2/2<' in page


# -- API ----------------------------------------------------------------------------------------


def api_token(session: Session, make_user: MakeUser, role: Role = Role.MEMBER) -> str:
    from pullre.accounts import api_tokens
    from pullre.accounts import user_accounts as accounts

    owner = accounts.find_user(session, make_user(f"{role.value}-api", role))
    assert owner is not None
    _, secret = api_tokens.create_token(session, owner, "test")
    session.commit()
    return secret


def test_the_api_carries_the_smoke_summary(
    client: FlaskClient, session: Session, make_user: MakeUser
) -> None:
    pull, env = ready_pull(session)
    smoke_step(session, env, FAILING, status=StepStatus.FAILED)
    bare = add_pull(session, pull.repository, 9, status=EnvironmentStatus.QUEUED)
    secret = api_token(session, make_user)
    headers = {"Authorization": f"Bearer {secret}"}

    expected = {
        "status": "fail",
        "counts": {"pass": 1, "warn": 0, "fail": 1, "error": 0, "timeout": 0},
        "failed": [EVIL],
        "summary": "1 passed, 1 failed: shop.smoke.test_<cart>",
        "failed_tests": [
            {"check": EVIL, "name": "shop.smoke.test_<cart>", "result": "fail", "message": "boom"}
        ],
        "time_ms": 345,
        "tier": "fast",
        "sha": env.deployed_sha,
        "reported_at": (NOW + timedelta(minutes=1)).isoformat(),
    }
    items = client.get("/api/v1/pulls", headers=headers).json["items"]  # type: ignore[index]
    by_number = {item["number"]: item for item in items}
    assert by_number[7]["smoke"] == expected
    assert by_number[9]["smoke"] is None
    detail = client.get(f"/api/v1/pulls/{pull.id}", headers=headers).json
    assert detail is not None
    assert detail["smoke"] == expected
    assert client.get(f"/api/v1/pulls/{bare.id}", headers=headers).json["smoke"] is None  # type: ignore[index]


# -- deep smoke on demand: the action, its endpoints, and what the controller does with results --


def test_deep_smoke_is_asked_from_the_pr_page_by_any_member(
    member_client: FlaskClient, session: Session
) -> None:
    pull, env = ready_pull(session)
    session.commit()
    path = f"/pulls/{pull.id}"
    assert "Run deep smoke checks" in member_client.get(path).get_data(as_text=True)

    refused = member_client.post(f"{path}/smoke")  # no CSRF token
    assert refused.status_code == 400
    session.refresh(env)
    assert env.smoke_requested_at is None

    response = member_client.post(
        f"{path}/smoke", data={"csrf_token": csrf_token(member_client, path)}
    )
    assert response.status_code == 302
    session.refresh(env)
    assert env.smoke_requested_at is not None
    page = member_client.get(path).get_data(as_text=True)
    assert "Deep smoke checks of #7 asked" in page
    assert "deep smoke checks asked by member" in page


def test_deep_smoke_from_the_api_is_202_and_refused_unless_ready(
    client: FlaskClient, session: Session, make_user: MakeUser
) -> None:
    pull, env = ready_pull(session)
    queued = add_pull(session, pull.repository, 9, status=EnvironmentStatus.QUEUED)
    secret = api_token(session, make_user)
    headers = {"Authorization": f"Bearer {secret}"}

    assert client.post(f"/api/v1/pulls/{pull.id}/smoke", headers=headers).status_code == 202
    session.refresh(env)
    assert env.smoke_requested_at is not None
    answer = client.post(f"/api/v1/pulls/{queued.id}/smoke", headers=headers)
    assert answer.status_code == 409
    assert "need it ready" in answer.json["error"]  # type: ignore[index]
    assert client.post(f"/api/v1/pulls/{pull.id}/smoke").status_code == 401


@pytest.mark.parametrize(
    "status", [EnvironmentStatus.DEPLOYING, EnvironmentStatus.FAILED, EnvironmentStatus.QUEUED]
)
def test_request_smoke_needs_a_ready_environment(
    session: Session, status: EnvironmentStatus
) -> None:
    repo = add_repository(session)
    pull = add_pull(session, repo, 3, status=status, server=add_server(session, 3))
    with pytest.raises(actions.ActionRefused, match="need it ready"):
        actions.request_smoke(session, pull, actor="ann", clock=utcnow)
    assert pull.environments[-1].smoke_requested_at is None


def record(
    session: Session, env: Environment, status: StepStatus, details: dict[str, Any] | None
) -> None:
    assert env.server is not None
    record_step(
        session,
        env.server,
        environment_id=env.id,
        head_sha=env.deployed_sha or "",
        step="smoke",
        status=status,
        log="log",
        details=details,
        clock=utcnow,
    )


def test_a_failed_deep_tier_shows_but_leaves_the_environment_ready(session: Session) -> None:
    pull, env = ready_pull(session)
    actions.request_smoke(session, pull, actor="ann", clock=utcnow)

    record(session, env, StepStatus.RUNNING, None)
    assert env.status is EnvironmentStatus.READY, "checks running do not make it deploying"
    assert env.smoke_requested_at is not None, "a running report answers nothing yet"
    record(session, env, StepStatus.FAILED, {**FAILING, "tier": "deep"})

    assert env.status is EnvironmentStatus.READY
    assert env.last_error is None
    assert env.smoke_requested_at is None
    kinds = session.scalars(select(Event.kind).where(Event.pull_request_id == pull.id)).all()
    assert "smoke_failed" in kinds
    assert "deploy_failed" not in kinds


def test_a_failed_fast_tier_fails_the_deploy_and_keeps_a_deep_request(session: Session) -> None:
    pull, env = ready_pull(session)
    actions.request_smoke(session, pull, actor="ann", clock=utcnow)

    record(session, env, StepStatus.FAILED, FAILING)

    assert env.status is EnvironmentStatus.FAILED
    assert env.last_error is not None
    assert env.last_error.startswith("smoke failed:")
    assert env.smoke_requested_at is not None  # fast results do not answer a deep request


def test_a_deep_request_is_answered_when_there_are_no_deep_checks(session: Session) -> None:
    pull, env = ready_pull(session)
    actions.request_smoke(session, pull, actor="ann", clock=utcnow)
    record(session, env, StepStatus.SKIPPED, None)
    assert env.smoke_requested_at is None
    assert env.status is EnvironmentStatus.READY


def test_the_assignment_asks_for_deep_while_requested(session: Session) -> None:
    from pullre.environments.deploys import assignment

    pull, env = ready_pull(session)
    env.schema_ready_at = NOW
    server = env.server
    assert server is not None

    def tier() -> str:
        found = assignment(
            session, server, staging_mysql_url="", secret_key="k" * 32, github_api_url=""
        )
        assert found is not None
        return str(found["smoke"])

    assert tier() == "fast"
    actions.request_smoke(session, pull, actor="ann", clock=utcnow)
    assert tier() == "deep"
    record(session, env, StepStatus.OK, {**PASSING, "tier": "deep"})
    assert tier() == "fast"


# -- GitHub: the pullre/smoke commit status and the comment -------------------------------------


def run(world: World) -> None:
    run_pass(
        world.engine,
        world.github,
        world.ec2.adapter,
        include_drafts=False,
        lease_ttl=timedelta(seconds=60),
        public_url="https://pullre.example",
    )


def smoke_statuses(world: World, sha: str) -> list[tuple[str, str]]:
    stored = world.standin.repo(OWNER, NAME).commit_statuses
    return [
        (s["state"], s["description"])
        for s in reversed(stored)
        if s["sha"] == sha and s["context"] == "pullre/smoke"
    ]


def agent_reports(
    world: World, number: int, *steps: tuple[str, StepStatus, dict[str, Any] | None]
) -> None:
    with world.sessions() as session:
        pull = session.scalars(select(PullRequest).where(PullRequest.number == number)).one()
        environment = pull.environments[-1]
        assert environment.server is not None
        for step, status, details in steps:
            record_step(
                session, environment.server, environment_id=environment.id,
                head_sha=pull.head_sha, step=step, status=status, log="", clock=utcnow,
                details=details,
            )  # fmt: skip
        session.commit()


def test_pullre_smoke_follows_the_results_only_on_change(world: World) -> None:
    world.add_repository()
    world.add_servers(1)
    number = world.standin.open_pull(OWNER, NAME)
    sha = world.standin.pull(OWNER, NAME, number).head_sha
    run(world)  # queued, then given the server
    agent_reports(world, number, ("fetch", StepStatus.RUNNING, None))
    run(world)
    agent_reports(
        world,
        number,
        ("health", StepStatus.OK, None),
        ("smoke", StepStatus.RUNNING, None),
    )
    run(world)
    agent_reports(world, number, ("smoke", StepStatus.OK, PASSING))
    run(world)
    run(world)  # nothing changed: nothing sent
    agent_reports(world, number, ("smoke", StepStatus.FAILED, {**FAILING, "tier": "deep"}))
    run(world)
    run(world)

    assert smoke_statuses(world, sha) == [
        ("pending", f"Waiting for the deploy of {sha[:7]}"),
        ("pending", f"Running smoke checks on {sha[:7]}"),
        ("success", "2 passed"),
        ("failure", "1 passed, 1 failed: shop.smoke.test_<cart>"),
    ]
    deploy = [
        s["state"]
        for s in world.standin.repo(OWNER, NAME).commit_statuses
        if s["context"] == "pullre/deploy"
    ]
    assert deploy[0] == "success", "a failed deep tier leaves the deploy a success"
    (comment,) = world.standin.repo(OWNER, NAME).comments[number]
    body = comment["body"]
    assert "- **Smoke checks:** failed (1 passed, 1 failed, deep tier)" in body
    assert "not passing: `shop.smoke.test_<cart>`" in body, "names stay in a code span"
    with world.sessions() as session:
        env = session.scalars(select(Environment)).one()
        assert env.status is EnvironmentStatus.READY
