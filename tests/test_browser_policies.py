"""In a real browser: wake a sleeping PR, pin one and find it on the dashboard, and follow the PR
comment's visit link to a sleeping environment until its app opens."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from playwright.sync_api import Dialog, Page, expect
from sqlalchemy.orm import Session

from pullre.models import (
    EnvironmentStatus,
    PullRequest,
    Role,
    RunningSpan,
    SleepReason,
    utcnow,
)
from tests.browser_fixtures import screenshot
from tests.page_seeds import add_pull, add_repository, add_server
from tests.test_browser_pages import log_in
from tests.web_fixtures import LiveServer

pytestmark = pytest.mark.browser

HOSTILE = "<img src=x onerror=alert(1)>"


def sleeping(live_server: LiveServer, staging_url: str | None = None) -> int:
    with live_server.session_factory() as session:
        server = add_server(session, 1, "stopped")
        if staging_url is not None:
            server.staging_url = staging_url
        pull = add_pull(
            session, add_repository(session), 42, status=EnvironmentStatus.SLEEPING,
            server=server, title="Checkout: pay by invoice",
        )  # fmt: skip
        environment = pull.environments[-1]
        environment.sleep_reason = SleepReason.IDLE
        environment.slept_at = utcnow() - timedelta(hours=2)
        environment.ready_before_sleep = True
        blog = add_pull(
            session, add_repository(session, "acme", "blog"), 7,
            status=EnvironmentStatus.READY, server=add_server(session, 2), title="New editor",
        )  # fmt: skip
        add_cost_history(session, [environment.id, blog.environments[-1].id])
        session.commit()
        return pull.id


def add_cost_history(session: Session, environment_ids: list[int]) -> None:
    """A few hours a day over the last five months, so the cost chart has something to draw."""
    now = utcnow()
    for day in range(0, 150, 3):
        for place, environment_id in enumerate(environment_ids):
            start = now - timedelta(days=day, hours=12)
            session.add(
                RunningSpan(
                    environment_id=environment_id,
                    started_at=start,
                    ended_at=start + timedelta(hours=2 + (day + 5 * place) % 7),
                    hourly_price=Decimal("0.0832") if place else Decimal("0.0416"),
                )
            )


def test_admin_wakes_a_sleeping_pr_then_pins_it_and_finds_the_pin_listed(
    live_server: LiveServer, page: Page
) -> None:
    dialogs: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    pull_id = sleeping(live_server)
    log_in(page, live_server, "ada", Role.ADMIN)
    expect(page.locator("#pool")).to_contain_text("1 sleeping")
    page.get_by_role("link", name="Checkout: pay by invoice").click()

    notice = page.get_by_role("note")
    expect(notice.locator(".badge-sleeping")).to_have_text("sleeping")
    expect(notice).to_contain_text(": idle.")
    expect(page.get_by_role("link", name="Open staging")).to_have_count(0)
    screenshot(page, "pull-page-sleeping")
    notice.get_by_role("button", name="Wake").click()
    expect(page.get_by_role("status")).to_contain_text("Waking #42")
    expect(page.locator(".facts .badge-provisioning")).to_have_text("provisioning")
    expect(page.get_by_text("#42 wakes (woken by ada)")).to_be_visible()
    expect(page.get_by_role("note")).to_have_count(0)

    page.get_by_label("Pin: why must it stay up?").fill(f"Demo on Friday {HOSTILE}")
    page.get_by_role("button", name="Pin", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("#42 pinned")
    expect(page.locator("p.pinned")).to_contain_text("Pinned by ada on")
    expect(page.locator("p.pinned q")).to_have_text(f"Demo on Friday {HOSTILE}")
    expect(page.get_by_role("button", name="Unpin")).to_be_visible()
    screenshot(page, "pull-page-pinned")

    page.get_by_role("navigation").get_by_role("link", name="Environments").click()
    row = page.locator("table.pinned-list tbody tr")
    expect(row).to_have_count(1)
    expect(row.get_by_role("link", name="acme/shop#42")).to_have_attribute(
        "href", f"/pulls/{pull_id}"
    )
    expect(row).to_contain_text("Checkout: pay by invoice")
    expect(row.locator("td").nth(1)).to_have_text("ada")
    expect(row.locator("td.reason")).to_have_text(f"Demo on Friday {HOSTILE}")
    chart = page.locator("svg.cost-chart")
    expect(chart.locator("rect.series-0").first).to_be_attached()
    expect(page.locator(".costs .legend")).to_contain_text("acme/blog")
    expect(page.get_by_role("table", name="Cost per repository per month")).to_be_attached()
    screenshot(page, "dashboard-cost")
    page.set_viewport_size({"width": 375, "height": 800})
    screenshot(page, "dashboard-pinned-phone")
    assert dialogs == []  # the hostile reason ran nothing


def test_the_visit_link_wakes_a_sleeping_environment_and_opens_the_app_when_ready(
    live_server: LiveServer, page: Page
) -> None:
    pull_id = sleeping(live_server, staging_url=f"{live_server.url}/healthz")
    log_in(page, live_server, "bea", Role.MEMBER)
    page.goto(f"{live_server.url}/pulls/{pull_id}/visit")
    expect(page.get_by_text("is asleep")).to_be_visible()
    page.get_by_role("button", name="Wake it").click()
    expect(page).to_have_url(f"{live_server.url}/pulls/{pull_id}/visit?wait=1")
    expect(page.locator(".waking")).to_contain_text("is starting")
    screenshot(page, "visit-waking")

    with live_server.session_factory() as session:  # the agent deployed it and reported ready
        pull = session.get(PullRequest, pull_id)
        assert pull is not None
        assert pull.environments[-1].status is EnvironmentStatus.PROVISIONING
        pull.environments[-1].status = EnvironmentStatus.READY
        session.commit()
    page.wait_for_url(f"{live_server.url}/healthz", timeout=15_000)  # the page refreshed itself
