"""People in a real browser: the dashboard, a PR page and its redeploy, registering a server."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import Dialog, Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from pullre.accounts import user_accounts as accounts
from pullre.models import (
    DeployStep,
    EnvironmentStatus,
    PassRun,
    PullRequest,
    Role,
    StepStatus,
    utcnow,
)
from pullre.servers.registry import find_server_by_token
from tests.browser_fixtures import screenshot
from tests.page_seeds import add_pull, add_repository, add_server
from tests.web_fixtures import PASSWORD, LiveServer

pytestmark = pytest.mark.browser

XSS_TITLE = "<img src=x onerror=alert(1)>"
MIGRATE_LOG = (
    "Applying 0042_editor.sql\n"
    "ERROR 1050 (42S01) at line 3: Table 'drafts' already exists\n"
    "<script>alert('log')</script>"
)


def log_in(page: Page, live_server: LiveServer, username: str, role: Role) -> None:
    with live_server.session_factory() as session:
        accounts.create_user(session, username, PASSWORD, role)
        session.commit()
    page.goto(live_server.url + "/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(
        page.get_by_role("heading", name="Pull request environments", exact=True)
    ).to_be_visible()


def seed(live_server: LiveServer) -> int:
    """Two repositories, a pool of four, PRs in every state and a week of pass samples."""
    now = utcnow()
    with live_server.session_factory() as session:
        shop, blog = (
            add_repository(session, "acme", "shop"),
            add_repository(session, "acme", "blog"),
        )
        servers = [add_server(session, n, "running" if n < 3 else "stopped") for n in (1, 2, 3, 4)]
        ready = add_pull(
            session,
            shop,
            42,
            status=EnvironmentStatus.READY,
            server=servers[0],
            title="Checkout: pay by invoice",
            smoke=StepStatus.OK,
        )
        add_pull(session, shop, 43, status=EnvironmentStatus.QUEUED, title="Faster search")
        failed = add_pull(
            session,
            blog,
            7,
            status=EnvironmentStatus.FAILED,
            server=servers[1],
            title="New editor",
        )
        add_failed_deploy(session, failed)
        add_pull(session, blog, 8, title=XSS_TITLE)
        ready.environments[-1].deployed_at = now - timedelta(minutes=12)
        for hours in range(0, 7 * 24, 1):
            busy = 1 + (hours // 5) % 4
            session.add(
                PassRun(
                    started_at=now - timedelta(hours=hours),
                    busy_servers=busy,
                    pool_size=4,
                    queued=max(0, (hours // 7) % 5 - 2),
                )
            )
        session.commit()
        return ready.id


def add_failed_deploy(session: Session, pull: PullRequest) -> None:
    environment = pull.environments[-1]
    environment.deployed_at = utcnow() - timedelta(hours=3)
    for step, status, log in (
        ("fetch", StepStatus.RUNNING, ""),
        ("fetch", StepStatus.OK, "From github.com:acme/blog\n * [new ref] refs/pull/7/head"),
        ("checkout", StepStatus.OK, f"HEAD is now at {pull.head_sha[:7]} New editor"),
        ("build", StepStatus.OK, "npm ci\nadded 812 packages in 14s"),
        ("migrate", StepStatus.FAILED, MIGRATE_LOG),
    ):
        session.add(
            DeployStep(
                environment_id=environment.id,
                head_sha=pull.head_sha,
                step=step,
                status=status,
                log_tail=log,
            )
        )
    environment.last_error = "migrate failed: " + MIGRATE_LOG


def test_dashboard_filters_pr_page_and_redeploy(live_server: LiveServer, page: Page) -> None:
    dialogs: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    pull_id = seed(live_server)
    log_in(page, live_server, "bea", Role.MEMBER)

    row = page.get_by_role("row").filter(has_text="Checkout: pay by invoice")
    # The address is shown as is and links the visit page, which works in every state.
    expect(row.get_by_role("link", name="https://stage-1.example.com")).to_have_attribute(
        "href", f"/pulls/{pull_id}/visit"
    )
    expect(row.locator(".badge-ready")).to_have_text("ready")
    expect(row.locator(".smoke-ok")).to_have_text("ok")
    expect(page.get_by_role("row").filter(has_text="Faster search")).to_contain_text("#1 in queue")
    expect(page.get_by_text(XSS_TITLE, exact=True)).to_be_visible()
    expect(page.locator(".usage-chart .busy").first).to_be_attached()
    screenshot(page, "dashboard")

    page.get_by_label("Status").select_option("queued")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(live_server.url + "/?repository=&status=queued")
    expect(page.locator("td.pull-cell")).to_have_count(1)
    expect(page.locator("td.pull-cell")).to_contain_text("Faster search")

    page.get_by_label("Status").select_option("")
    page.get_by_label("Repository").select_option(label="acme/blog")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("td.pull-cell")).to_have_count(2)
    expect(page.locator("table.pulls")).not_to_contain_text("Checkout")
    expect(page.get_by_text(XSS_TITLE, exact=True)).to_be_visible()

    page.set_viewport_size({"width": 375, "height": 800})
    page.get_by_role("link", name="Clear").click()
    expect(page.locator("td.pull-cell")).to_have_count(4)
    screenshot(page, "dashboard-phone")
    page.set_viewport_size({"width": 1280, "height": 800})

    page.get_by_role("link", name="Checkout: pay by invoice").click()
    expect(page).to_have_url(f"{live_server.url}/pulls/{pull_id}")
    expect(page.get_by_role("heading", name="Checkout: pay by invoice")).to_be_visible()
    expect(page.get_by_role("link", name="#42 on GitHub")).to_have_attribute(
        "href", "https://github.com/acme/shop/pull/42"
    )
    page.get_by_role("button", name="Redeploy").click()
    expect(page.get_by_role("status")).to_contain_text("Redeploy of #42 asked")
    expect(page.get_by_text("redeploy asked by bea")).to_be_visible()
    with live_server.session_factory() as session:
        pull = session.get(PullRequest, pull_id)
        assert pull is not None
        assert pull.environments[-1].deploy_requested_at is not None
    expect(page.get_by_role("button", name="Release")).to_have_count(0)  # admins only
    screenshot(page, "pull-page")
    page.set_viewport_size({"width": 375, "height": 800})
    screenshot(page, "pull-page-phone")

    page.set_viewport_size({"width": 1280, "height": 800})
    page.get_by_role("navigation").get_by_role("link", name="Environments").click()
    page.get_by_role("link", name="New editor").click()
    expect(page.locator("pre.error-log")).to_contain_text("<script>alert('log')</script>")
    # The error is said once, above; the failed step's whole log is one click away.
    migrate = page.locator("details.step-failed")
    expect(migrate).not_to_have_attribute("open", "")
    migrate.locator("summary").click()
    expect(migrate.locator("pre.log")).to_contain_text("Table 'drafts' already exists")
    page.locator("summary").filter(has_text="build").click()
    expect(page.get_by_text("added 812 packages in 14s")).to_be_visible()
    screenshot(page, "pull-page-failed")

    page.get_by_role("navigation").get_by_role("link", name="Events").click()
    row = page.get_by_role("row").filter(has_text="redeploy asked by bea")
    expect(row.get_by_role("link", name="acme/shop#42")).to_have_attribute(
        "href", f"/pulls/{pull_id}"
    )
    page.set_viewport_size({"width": 375, "height": 800})
    screenshot(page, "events-phone")
    assert dialogs == []


def test_dashboard_refreshes_its_table_in_place(live_server: LiveServer, page: Page) -> None:
    seed(live_server)
    log_in(page, live_server, "cy", Role.MEMBER)
    page.get_by_label("Status").select_option("queued")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("td.pull-cell")).to_have_count(1)
    page.evaluate("window.notReloaded = true")

    with live_server.session_factory() as session:
        shop = session.scalars(select(PullRequest)).first()
        assert shop is not None
        add_pull(session, shop.repository, 99, status=EnvironmentStatus.QUEUED, title="Arrived")
        add_pull(session, shop.repository, 100, status=None, title="Not queued")
        session.commit()

    expect(page.get_by_text("Arrived")).to_be_visible(timeout=20_000)
    expect(page.locator("td.pull-cell")).to_have_count(2)  # the filter held
    expect(page.locator("#pool")).to_contain_text("2 queued")
    assert page.evaluate("window.notReloaded") is True


def test_admin_registers_a_server_and_copies_its_token(live_server: LiveServer, page: Page) -> None:
    log_in(page, live_server, "ada", Role.ADMIN)
    page.get_by_role("navigation").get_by_role("link", name="Servers").click()
    page.get_by_role("link", name="Register a server").click()
    page.get_by_label("Instance id").fill("i-0abc1234def567890")
    page.get_by_label("Name").fill("stage-7")
    page.get_by_label("Staging URL").fill("https://stage-7.example.com")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name="i-0abc1234def567890 registered")).to_be_visible()
    token = page.locator("code.token").inner_text().strip()
    assert len(token) >= 40

    with live_server.session_factory() as session:
        server = find_server_by_token(session, token)
        assert server is not None
        assert (server.instance_id, server.name) == ("i-0abc1234def567890", "stage-7")

    page.get_by_role("navigation").get_by_role("link", name="Environments").click()
    expect(page.locator("#pool")).to_contain_text("1 free")
