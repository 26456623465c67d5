"""axe-core on every page, as an admin and as a member: no serious or critical violation
(nor an empty table header).

axe-core comes from npm (``npm install axe-core@4`` at the repository root, which ``.ci/run``
does; ``PULLRE_TEST_AXE`` may point at another ``axe.min.js``). It is injected into each page
by Playwright and run there, so it judges what a browser really drew: computed contrast,
labels, landmarks, names. The pages are the phone test's walk (the app's URL map, with data
chosen to be wide and to fill every part of a page), so a new page is checked as it appears.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from pullre.accounts import user_accounts as accounts
from pullre.models import Role
from pullre.web import create_app
from tests.test_browser_phone import page_paths
from tests.test_browser_phone import seed as seed_pages
from tests.web_fixtures import PASSWORD, LiveServer

pytestmark = pytest.mark.browser

REPO_ROOT = Path(__file__).resolve().parent.parent
#: Impacts that fail the test (axe's others are "moderate" and "minor").
FAILING = ("serious", "critical")
#: Rules of lower impact that fail too: the issue found them (a column of buttons unnamed).
ALWAYS = ("empty-table-header",)


def axe_path() -> Path:
    path = Path(os.environ.get("PULLRE_TEST_AXE") or REPO_ROOT / "node_modules/axe-core/axe.min.js")
    if not path.is_file():
        pytest.fail(
            f"the accessibility test needs axe-core at {path}: run `npm install --no-save "
            "axe-core@4` at the repository root (.ci/run does), or set PULLRE_TEST_AXE",
            pytrace=False,
        )
    return path


@pytest.fixture
def desk(browser: Browser) -> Iterator[Page]:
    """A desktop page that lets the injected axe script run under the app's strict CSP."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def violations(page: Page, axe: Path) -> list[str]:
    page.add_script_tag(path=str(axe))
    found: list[dict[str, object]] = page.evaluate(
        """async ([failing, always]) => {
          const result = await axe.run(document, { resultTypes: ["violations"] });
          return result.violations
            .filter((v) => failing.includes(v.impact) || always.includes(v.id))
            .map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                           nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }));
        }""",
        [list(FAILING), list(ALWAYS)],
    )
    return [f"{v['id']} ({v['impact']}): {v['help']} at {v['nodes']}" for v in found]


def log_in(page: Page, url: str, username: str) -> None:
    page.goto(url + "/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Pull request environments")).to_be_visible()


def test_no_page_has_a_serious_or_critical_axe_violation(
    live_server: LiveServer, desk: Page
) -> None:
    axe = axe_path()
    with live_server.session_factory() as session:
        ids = seed_pages(session)
        accounts.create_user(session, "axe-member", PASSWORD, Role.MEMBER)
        session.commit()
    app = create_app(live_server.settings, session_factory=live_server.session_factory)
    paths = [*page_paths(app, ids), f"/pulls/{ids['deploying_pull_id']}/visit"]
    paths.remove("/login")

    found: dict[str, list[str]] = {}
    desk.goto(live_server.url + "/login")
    if problems := violations(desk, axe):
        found["/login"] = problems
    walked = 0
    for username in ("phone-admin", "axe-member"):
        desk.context.clear_cookies()
        log_in(desk, live_server.url, username)
        for path in paths:
            response = desk.goto(live_server.url + path)
            assert response is not None
            if response.status == 403 and username == "axe-member":
                continue  # an admin page: the admin's walk checked it
            assert response.status == 200, (username, path)
            walked += 1
            if problems := violations(desk, axe):
                found[f"{username} {path}"] = problems
    # A form sent back with errors: focus on their summary, whose links lead to the inputs.
    desk.goto(live_server.url + "/scenarios/new")
    desk.get_by_role("button", name="Save").click()
    expect(desk.locator("#error-summary")).to_be_focused()
    desk.locator("#error-summary a").first.click()
    expect(desk.locator("#title")).to_be_focused()
    if problems := violations(desk, axe):
        found["form errors"] = problems
    assert found == {}, "\n".join(f"{page}: {p}" for page, ps in found.items() for p in ps)
    assert walked >= 40  # both walks really covered the pages
