"""A person in a real browser: log in, add a repository through the form, see it listed."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from pullre import accounts
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
    expect(page.get_by_text("Unknown user or wrong password.")).to_be_visible()

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(live_server.url + "/repositories/")
    expect(page.get_by_text("No repository yet.")).to_be_visible()

    page.get_by_role("link", name="Add a repository").click()
    page.get_by_label("Repository").fill("acme/<b>shop")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("expected OWNER/NAME")).to_be_visible()

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
