"""A person in a real browser: log in, add a repository through the form, see it listed."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from pullre.accounts import user_accounts as accounts
from pullre.models import Repository, Role
from tests.browser_fixtures import screenshot
from tests.web_fixtures import PASSWORD, LiveServer

pytestmark = pytest.mark.browser


def test_admin_logs_in_and_adds_a_repository(live_server: LiveServer, page: Page) -> None:
    with live_server.session_factory() as session:
        accounts.create_user(session, "ada", PASSWORD, Role.ADMIN)
        session.commit()

    page.goto(live_server.url + "/repositories/")
    expect(page).to_have_url(live_server.url + "/login?next=/repositories/")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("p.error", has_text="Unknown user or wrong password.")).to_be_visible()
    expect(page.locator("#error-summary")).to_be_focused()  # the summary comes first

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(live_server.url + "/repositories/")
    expect(page.get_by_text("No repository yet.")).to_be_visible()

    page.get_by_role("link", name="Add a repository").click()
    page.get_by_label("Repository").fill("acme/<b>shop")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("p.error", has_text="expected OWNER/NAME")).to_be_visible()

    page.get_by_label("Repository").fill("acme/shop")
    page.get_by_label("Base schema").fill("shop_base")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Repository acme/shop added.")
    row = page.get_by_role("row").filter(has_text="acme/shop")
    expect(row).to_contain_text("shop_base")
    expect(row).to_contain_text("any PR")
    screenshot(page, "repositories")

    with live_server.session_factory() as session:
        repo = session.scalars(select(Repository)).one()
        assert (repo.full_name, repo.base_schema, repo.enabled) == ("acme/shop", "shop_base", True)

    page.get_by_role("link", name="Environments").click()
    expect(page.get_by_role("heading", name="No pull request environments yet")).to_be_visible()
    screenshot(page, "dashboard-empty")

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(live_server.url + "/login")


def test_admin_creates_office_hours_and_gives_them_to_a_repository(
    live_server: LiveServer, page: Page
) -> None:
    with live_server.session_factory() as session:
        accounts.create_user(session, "ada", PASSWORD, Role.ADMIN)
        session.add(Repository(owner="acme", name="shop"))
        session.commit()
    page.goto(live_server.url + "/login")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    page.get_by_role("link", name="Office hours").click()
    expect(page.get_by_text("No office hours yet.")).to_be_visible()
    page.get_by_role("link", name="Add office hours").click()
    page.get_by_label("Name").fill("berlin office")
    page.get_by_label("Time zone").fill("Europe/Berln")
    page.get_by_label("Sat").check()
    page.get_by_label("Opens at").fill("08:30")
    page.get_by_label("Closes at").fill("17:00")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("p.error", has_text="Unknown time zone 'Europe/Berln'")).to_be_visible()
    expect(page.get_by_role("link", name="Time zone: Unknown time zone")).to_be_visible()
    screenshot(page, "schedule-form")

    page.get_by_label("Time zone").fill("Europe/Berlin")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Office hours berlin office added.")
    row = page.get_by_role("row").filter(has_text="berlin office")
    expect(row).to_contain_text("Mon\N{EN DASH}Sat 08:30\N{EN DASH}17:00 (Europe/Berlin)")
    expect(row).to_contain_text("(Europe/Berlin)")
    expect(row).to_contain_text("nothing yet")
    screenshot(page, "schedules")

    page.get_by_role("link", name="Repositories").click()
    page.get_by_role("link", name="acme/shop").click()
    page.get_by_label("Office hours").select_option(
        label=("berlin office: Mon\N{EN DASH}Sat 08:30\N{EN DASH}17:00 (Europe/Berlin)")
    )
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Repository acme/shop saved.")
    expect(page.get_by_role("row").filter(has_text="acme/shop")).to_contain_text(
        "berlin office: Mon\N{EN DASH}Sat 08:30\N{EN DASH}17:00 (Europe/Berlin)"
    )
    screenshot(page, "repositories-office-hours")

    page.get_by_role("navigation").get_by_role("link", name="Office hours").click()
    expect(page.get_by_role("row").filter(has_text="berlin office")).to_contain_text(
        "repository acme/shop"
    )
    with live_server.session_factory() as session:
        repo = session.scalars(select(Repository)).one()
        assert repo.schedule is not None
        assert (repo.schedule.name, repo.schedule.days) == ("berlin office", [1, 2, 3, 4, 5, 6])
