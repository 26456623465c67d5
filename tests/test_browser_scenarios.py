"""A business owner's scenario flow in a real browser, with GitHub's merge signal following it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from pullre.accounts import user_accounts as accounts
from pullre.clock import system_clock
from pullre.github.adapter import make_github
from pullre.github.standin.server import GitHubStandIn
from pullre.models import EnvironmentStatus, Repository, Role
from pullre.reconcile.sync import sync_repository
from pullre.reporting.pass_report import report_changes
from tests.browser_fixtures import screenshot
from tests.github_fixtures import GITHUB_TOKEN
from tests.page_seeds import add_pull, add_server
from tests.web_fixtures import PASSWORD, LiveServer, serving

pytestmark = pytest.mark.browser


@pytest.fixture
def scenario_server(tmp_path: Path, github_standin: GitHubStandIn) -> Iterator[LiveServer]:
    """``live_server`` with ``[github]`` pointing at the stand-in, as a real install would be."""
    with serving(
        tmp_path, github=lambda settings: make_github(settings.github),
        PULLRE_GITHUB_API_URL=github_standin.url, PULLRE_GITHUB_TOKEN=GITHUB_TOKEN,
        PULLRE_GITHUB_WRITE_INTERVAL="0",
    ) as server:  # fmt: skip
        yield server


def log_in(page: Page, server: LiveServer, username: str) -> None:
    with server.session_factory() as session:
        if accounts.authenticate(session, username, PASSWORD) is None:
            accounts.create_user(session, username, PASSWORD, Role.MEMBER)
            session.commit()
    page.goto(server.url + "/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Pull request environments")).to_be_visible()


def acceptance(standin: GitHubStandIn) -> list[tuple[str, str]]:
    return [
        (s["state"], s["sha"][:7])
        for s in reversed(standin.repo("acme", "shop").commit_statuses)
        if s["context"] == "pullre/acceptance"
    ]


def test_write_attach_run_sign_off_then_a_push_makes_it_stale(
    page: Page, scenario_server: LiveServer, github_standin: GitHubStandIn
) -> None:
    server, github = scenario_server, make_github(scenario_server.settings.github)

    def report() -> None:
        errors = report_changes(
            server.session_factory, github, public_url=server.url, clock=system_clock
        )
        assert errors == []

    number = github_standin.open_pull("acme", "shop", author="alice", title="Invoices")
    sha = github_standin.pull("acme", "shop", number).head_sha
    with server.session_factory() as session:
        repo = Repository(owner="acme", name="shop")
        session.add(repo)
        session.flush()
        pull = add_pull(session, repo, number, status=EnvironmentStatus.READY,
                        server=add_server(session, 1))  # fmt: skip
        pull.head_sha = pull.environments[0].deployed_sha = sha
        pull_id = pull.id
        session.commit()

    log_in(page, server, "bea")
    page.get_by_role("link", name="Scenarios", exact=True).click()
    page.get_by_role("link", name="New scenario").click()
    page.get_by_label("Title").fill("Pay <b>by</b> invoice")
    page.get_by_label("Steps").fill(
        "1. Buy a book with Invoice\n   Expected: Invoice mentioned\n"
        "2. Open the orders\n   Expected: Awaiting payment\n"
    )
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("cell", name="Pay <b>by</b> invoice")).to_be_visible()
    page.get_by_role("link", name="Pay <b>by</b> invoice").click()  # its owner edits it
    page.get_by_role("link", name="Edit").click()
    expect(page.get_by_label("Steps")).to_have_value(
        "1. Buy a book with Invoice\nExpected: Invoice mentioned\n"
        "2. Open the orders\nExpected: Awaiting payment"
    )
    page.get_by_label("Labels").fill("invoices")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("labels: invoices")).to_be_visible()

    page.goto(f"{server.url}/pulls/{pull_id}")
    page.get_by_role("link", name=f"Scenarios of #{number}").click()
    page.get_by_label("Attach a scenario").select_option(label="Pay <b>by</b> invoice")
    page.get_by_role("button", name="Attach").click()
    expect(page.locator(".scenario-item .badge")).to_have_text("not run")
    report()
    assert acceptance(github_standin) == [("pending", sha[:7])]

    page.get_by_role("button", name="Run “Pay <b>by</b> invoice”").click()
    expect(page.get_by_role("heading", name="Step 1 of 2")).to_be_visible()
    page.get_by_label("Note").fill("Mail text fine")
    page.get_by_role("button", name="Pass").click()
    expect(page.get_by_role("heading", name="Step 2 of 2")).to_be_visible()
    page.set_viewport_size({"width": 375, "height": 740})
    shot = screenshot(page, "scenario-run-step-375")
    assert shot.stat().st_size > 0
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.keyboard.press("p")
    expect(page.get_by_role("button", name="Pass")).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("n")
    expect(page.get_by_role("heading", name="Pay <b>by</b> invoice: passed")).to_be_visible()
    expect(page.locator(".run-results")).to_contain_text("Mail text fine")
    report()
    assert acceptance(github_standin) == [("pending", sha[:7]), ("success", sha[:7])]
    report()  # nothing changed: nothing sent
    assert len(acceptance(github_standin)) == 2

    pushed = github_standin.push("acme", "shop", number)
    with server.session_factory() as session:
        repo_row = session.get(Repository, repo.id)
        assert repo_row is not None
        sync_repository(session, github, repo_row, system_clock)
        session.commit()
    page.goto(f"{server.url}/pulls/{pull_id}/scenarios")
    expect(page.locator(".scenario-item .badge")).to_have_text("stale")
    expect(page.locator(".scenario-item")).to_contain_text("run it again")
    report()
    assert acceptance(github_standin)[-1] == ("pending", pushed[:7])

    page.get_by_role("button", name="Menu").click()  # on a phone, Log out is in the menu
    page.get_by_role("button", name="Log out").click()
    log_in(page, server, "alice")  # the PR's author, by GitHub login
    page.goto(f"{server.url}/pulls/{pull_id}/scenarios")
    expect(page.get_by_text("someone else signs off")).to_be_visible()
    page.get_by_role("button", name="Run “Pay <b>by</b> invoice”").click()
    expect(page.get_by_text("may not sign off its own scenarios")).to_be_visible()
    expect(page.locator(".scenario-item .badge")).to_have_text("stale")
