"""The dashboard puts the PR table first, and its rows say what people scan for: the pin,
acceptance (scenarios passed/total), Wake for a sleeping environment, a deploy's progress; its
refresh keeps keyboard focus and announces changes politely."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from pullre.accounts import user_accounts as accounts
from pullre.models import (
    DeployStep,
    EnvironmentStatus,
    PullRequest,
    Role,
    Scenario,
    ScenarioRun,
    StepStatus,
    utcnow,
)
from pullre.scenarios import acceptance as scenarios
from tests.page_seeds import add_pull, add_repository, add_server
from tests.web_fixtures import PASSWORD, LiveServer

STEPS = [{"action": "Pay", "expected": "Paid"}]


def seed(session: Session) -> dict[str, int]:
    repo = add_repository(session, "acme", "rows")
    ready = add_pull(
        session, repo, 1, status=EnvironmentStatus.READY, server=add_server(session, 1)
    )
    ready.pinned_at, ready.pinned_by, ready.pinned_reason = utcnow(), "ada", "customer demo"
    asleep = add_pull(
        session, repo, 2, status=EnvironmentStatus.SLEEPING, server=add_server(session, 2)
    )
    moving = add_pull(
        session, repo, 3, status=EnvironmentStatus.DEPLOYING, server=add_server(session, 3)
    )
    env = moving.environments[-1]
    began = utcnow() - timedelta(seconds=40)
    for step, status in (("fetch", StepStatus.RUNNING), ("fetch", StepStatus.OK),
                         ("checkout", StepStatus.OK), ("build", StepStatus.RUNNING)):  # fmt: skip
        session.add(DeployStep(environment_id=env.id, head_sha=moving.head_sha, step=step,
                               status=status, reported_at=began))  # fmt: skip
    passed, open_one = (Scenario(title=t, steps=STEPS, labels=[]) for t in ("Pay", "Refund"))
    session.add_all([passed, open_one])
    session.flush()
    for scenario in (passed, open_one):
        scenarios.attach(session, ready, scenario, "ada")
    session.add(ScenarioRun(
        pull_request_id=ready.id, scenario_id=passed.id, head_sha=ready.head_sha, runner_name="bo",
        steps=STEPS, results=[{"status": "pass", "note": ""}], started_at=began, finished_at=began,
    ))  # fmt: skip
    session.commit()
    return {"ready": ready.id, "asleep": asleep.id, "moving": moving.id}


def row(body: str, pull_id: int) -> str:
    start = body.index(f'href="/pulls/{pull_id}"')
    return body[start : body.index("</tr>", start)]


def test_the_table_comes_first_and_rows_show_pin_acceptance_wake_and_progress(
    member_client: FlaskClient, session: Session
) -> None:
    ids = seed(session)
    body = member_client.get("/").get_data(as_text=True)
    table, charts, pinned = (
        body.index(s) for s in ('id="environments"', 'class="overview"', "pinned-pulls")
    )
    assert table < charts < pinned
    ready = row(body, ids["ready"])
    assert "badge-pinned" in ready
    assert "by ada" in ready
    assert f'href="/pulls/{ids["ready"]}/scenarios">1/2 passed</a>' in ready
    assert "Wake" not in ready
    asleep = row(body, ids["asleep"])
    assert f'action="/pulls/{ids["asleep"]}/wake"' in asleep
    assert 'name="csrf_token"' in asleep
    assert "badge-pinned" not in asleep
    moving = row(body, ids["moving"])
    assert "step 3 of 7 (build) for 4" in moving  # 40-odd seconds
    assert "Wake" not in moving
    fragment = member_client.get("/", headers={"X-Requested-With": "fetch"}).get_data(as_text=True)
    assert 'data-summary="Shown: 1 deploying, 1 ready, 1 sleeping."' in fragment


@pytest.mark.browser
def test_the_refresh_keeps_focus_and_announces_what_changed(
    live_server: LiveServer, page: Page
) -> None:
    with live_server.session_factory() as session:
        ids = seed(session)
        accounts.create_user(session, "watcher", PASSWORD, Role.MEMBER)
        session.commit()
    page.goto(live_server.url + "/login")
    page.get_by_label("Username").fill("watcher")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    wake = page.get_by_role("button", name="Wake #2")
    wake.focus()
    first_row = page.locator("table.pulls tbody tr").first.bounding_box()
    assert first_row is not None
    assert first_row["y"] < 900  # the first PR row is on the first screen at 1280x800
    with live_server.session_factory() as session:
        pull = session.get(PullRequest, ids["ready"])
        assert pull is not None
        pull.environments[-1].status = EnvironmentStatus.FAILED
        session.commit()
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")  # refresh now
    expect(page.locator("#dashboard-announce")).to_have_text(
        "Shown: 1 deploying, 1 failed, 1 sleeping."
    )
    expect(page.get_by_role("button", name="Wake #2")).to_be_focused()
