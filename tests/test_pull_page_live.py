"""The live PR page: ``live.json`` says what moved, and a page left open in Chromium moves from
deploying to ``ready`` by itself within seconds of the agent's report, without a reload."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from pullre.accounts import user_accounts as accounts
from pullre.models import Environment, EnvironmentStatus, Role
from pullre.servers.registry import register_server
from pullre.smoke import runner as smoke
from tests.agent_fixtures import stage_environment
from tests.browser_fixtures import screenshot
from tests.test_agent_api import Agent
from tests.web_fixtures import PASSWORD, LiveServer

SHA = "a" * 40


def staged(session: Session, status: EnvironmentStatus) -> tuple[Environment, str]:
    server, token = register_server(session, "i-0000beef", "https://live.example", "live")
    env = stage_environment(
        session, server, 12, SHA, clone_url="/srv/git/shop.git", status=status,
        title="Checkout <b>live</b>", schema_name="pr_1_12",
        schema_ready_at=datetime.now(UTC),
    )  # fmt: skip
    session.commit()
    return env, token


def test_live_json_needs_a_login(client: FlaskClient, session: Session) -> None:
    env, _ = staged(session, EnvironmentStatus.DEPLOYING)
    response = client.get(f"/pulls/{env.pull_request_id}/live.json")
    assert response.status_code in {302, 401}
    assert b"Checkout" not in response.data


def test_live_json_gives_the_parts_while_in_flight_and_touches_nothing(
    member_client: FlaskClient, session: Session
) -> None:
    env, _ = staged(session, EnvironmentStatus.DEPLOYING)
    before = env.last_activity_at
    page = member_client.get(f"/pulls/{env.pull_request_id}").get_data(as_text=True)
    assert 'data-in-flight="true"' in page
    assert 'aria-live="polite"' in page
    session.expire_all()
    touched = session.get(Environment, env.id)
    assert touched is not None
    touched.last_activity_at = before  # opening the page was activity; the poll must not be
    session.commit()
    response = member_client.get(f"/pulls/{env.pull_request_id}/live.json")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    live = response.get_json()
    assert live["in_flight"] is True
    assert live["status"] == "deploying"
    assert live["announce"].startswith("Status: deploying.")
    assert set(live["parts"]) == {
        "pull-status", "pull-environment", "pull-actions", "smoke", "pull-deploy",
        "pull-timeline",
    }  # fmt: skip
    for element, html in live["parts"].items():
        assert f'id="{element}"' in html
        assert "data-live-part" in html
    assert "current-step" in live["parts"]["pull-environment"]
    session.expire_all()
    assert session.get(Environment, env.id).last_activity_at == before  # type: ignore[union-attr]


def test_a_ready_page_does_not_poll(member_client: FlaskClient, session: Session) -> None:
    env, _ = staged(session, EnvironmentStatus.READY)
    page = member_client.get(f"/pulls/{env.pull_request_id}").get_data(as_text=True)
    assert 'data-in-flight="false"' in page
    live = member_client.get(f"/pulls/{env.pull_request_id}/live.json").get_json()
    assert live["in_flight"] is False


def agent_call(url: str, path: str, headers: dict[str, str], body: object | None = None) -> object:
    request = urllib.request.Request(
        url + path,
        data=json.dumps(body).encode() if body is not None else None,
        headers={**headers, "Content-Type": "application/json"},
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


@pytest.mark.browser
def test_a_pr_page_left_open_shows_ready_after_the_agents_report(
    live_server: LiveServer, page: Page
) -> None:
    with live_server.session_factory() as session:
        env, token = staged(session, EnvironmentStatus.PROVISIONING)
        accounts.create_user(session, "watcher", PASSWORD, Role.MEMBER)
        session.commit()
        pull_id, env_id = env.pull_request_id, env.id
    page.goto(live_server.url + "/login")
    page.get_by_label("Username").fill("watcher")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{live_server.url}/pulls/{pull_id}")
    status = page.locator("#pull-environment .badge").first
    expect(status).to_have_text("provisioning")
    page.get_by_role("link", name="Open staging when ready").focus()
    page.evaluate("window.leftOpen = true")  # gone if the page were reloaded

    headers = {"Authorization": f"Bearer {token}"}
    found = agent_call(live_server.url, "/api/agent/assignment", headers)
    assignment = found["assignment"]  # type: ignore[index]
    headers["X-Pullre-Environment-Token"] = assignment["environment_token"]

    def report(step: str, state: str, log: str = "") -> None:
        body = {"environment_id": env_id, "head_sha": SHA, "step": step, "status": state}
        agent_call(live_server.url, "/api/agent/steps", headers, {**body, "log": log})

    report("fetch", "running")
    expect(status).to_have_text("deploying", timeout=5_000)
    expect(page.locator("#pull-environment .current-step")).to_contain_text("step 1 of 7 (fetch)")
    for step in ("fetch", "checkout", "build", "migrate", "start"):
        report(step, "ok", f"{step} done <script>x</script>")
    started = time.monotonic()
    report("health", "ok")
    expect(status).to_have_text("ready", timeout=5_000)
    assert time.monotonic() - started < 5
    expect(page.get_by_role("link", name="Open staging", exact=True)).to_be_visible()
    expect(page.locator("#pull-deploy")).to_contain_text("health")
    expect(page.locator("#pull-timeline")).to_contain_text("ready at aaaaaaa")
    expect(page.locator("#pull-announce")).to_contain_text("Status: ready.")
    assert page.evaluate("document.querySelectorAll('script:not([src])').length") == 0
    assert page.evaluate("window.leftOpen") is True  # never reloaded
    assert page.locator("[data-live-url]").get_attribute("data-in-flight") == "false"  # stopped
    # Focus stays where the keyboard left it: the staging link, which now opens the app.
    assert page.evaluate("document.activeElement.closest('#pull-status') !== null")
    screenshot(page, "pull-page-live-ready")


def test_deep_smoke_asked_keeps_the_page_live_until_its_results_come(
    app: Flask, member_client: FlaskClient, session: Session
) -> None:
    env, token = staged(session, EnvironmentStatus.READY)
    env.deployed_sha = SHA
    env.smoke_requested_at = datetime.now(UTC)
    session.commit()
    path = f"/pulls/{env.pull_request_id}/live.json"
    asked = member_client.get(path).get_json()
    assert asked["in_flight"] is True
    assert "Deep smoke checks are running." in asked["announce"]
    assert "waiting for the agent" in asked["parts"]["pull-environment"]

    agent = Agent(app.test_client(), token)
    agent.assignment()
    checks = (smoke.Result("checkout-<b>", "deep", "http", "fail", 5, "500"),)
    report = smoke.Report(tier="deep", results=checks, time_ms=5)
    body = {"environment_id": env.id, "head_sha": SHA, "step": "smoke", "status": "failed",
            "results": report.to_json()}  # fmt: skip
    response = agent.client.post("/api/agent/steps", headers=agent.headers, json=body)
    assert response.status_code == 200, response.get_json()
    answered = member_client.get(path).get_json()
    assert answered["in_flight"] is False  # the page stops asking after this answer
    assert "checkout-&lt;b&gt;" in answered["parts"]["smoke"]
    assert "deep tier" in answered["parts"]["smoke"]
