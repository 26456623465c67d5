"""Every page on a phone (390 by 844, headless Chromium): nothing wider than the screen.

The pages are found from the app's own URL map, so a new page is checked as soon as it exists
(and a page whose URL needs an id this test cannot fill fails here, asking to be added). Data is
chosen to be wide: long URLs, titles, errors and a smoke table with failing app tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import time

import pytest
from flask import Flask, url_for
from playwright.sync_api import Browser, Page, expect
from sqlalchemy.orm import Session

from pullre.accounts import api_tokens
from pullre.accounts import user_accounts as accounts
from pullre.models import (
    DeployStep,
    Environment,
    EnvironmentStatus,
    GithubUser,
    Role,
    Scenario,
    ScenarioAttachment,
    ScenarioRun,
    Schedule,
    StepStatus,
    User,
)
from pullre.servers import settings as server_settings
from pullre.web import create_app
from tests.browser_fixtures import screenshot
from tests.page_seeds import add_pull, add_repository, add_server
from tests.web_fixtures import PASSWORD, LiveServer

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
LONG = "a-rather-long-unbroken-name-that-people-really-do-give-their-branches-" * 2
#: Pages with nothing to show on a phone, or not pages at all.
NOT_PAGES = {"health.healthz", "metrics.scrape", "pull_live.live", "static"}


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def smoke_results() -> dict[str, object]:
    checks = [
        {
            "name": f"{LONG[:40]} check {n}",
            "tier": "fast",
            "type": "smoketest" if n == 0 else "http",
            "result": "fail" if n == 0 else "pass",
            "duration_ms": 12,
            "message": f"GET /{LONG} -> 500",
            **(
                {
                    "tests": [
                        {"name": f"shop.smoke.{LONG}.test_pay", "result": "fail", "message": LONG}
                    ]
                }
                if n == 0
                else {}
            ),
        }
        for n in range(4)
    ]
    counts = {"pass": 3, "warn": 0, "fail": 1, "error": 0, "timeout": 0}
    return {"status": "fail", "tier": "fast", "counts": counts, "failed": [checks[0]["name"]],
            "time_ms": 48, "checks": checks}  # fmt: skip


def seed(session: Session) -> dict[str, int]:
    """Wide rows of every kind; the ids the pages' URLs take."""
    admin = accounts.create_user(session, "phone-admin", PASSWORD, Role.ADMIN)
    api_tokens.create_token(session, admin, f"laptop {LONG[:60]}")
    schedule = Schedule(
        name="Berlin office", time_zone="Europe/Berlin", days=[1, 2, 3, 4, 5],
        opens_at=time(8), closes_at=time(18),
    )  # fmt: skip
    session.add(schedule)
    shop = add_repository(session, "acme-corporation", "shop-frontend-monorepo")
    shop.required_label = "staging-please"
    pool = [add_server(session, n) for n in (1, 2)]
    pool[0].staging_url = f"https://pr-1.staging.{LONG[:50]}.example.com"
    session.flush()
    server_settings.add_outside_server(session, "i-0fedcba9876543210", schedule=schedule)
    failed = add_pull(
        session, shop, 4242, status=EnvironmentStatus.FAILED, server=pool[0], title=LONG
    )
    failed.head_ref = LONG
    environment = failed.environments[-1]
    environment.last_error = f"health failed: GET / answered 404\n<html><h1>{LONG}</h1></html>"
    for step, status in (
        ("fetch", StepStatus.OK),
        ("health", StepStatus.OK),
        ("smoke", StepStatus.FAILED),
    ):
        session.add(
            DeployStep(
                environment_id=environment.id, head_sha=failed.head_sha, step=step,
                status=status, log_tail=f"{step}: {LONG}",
                details=smoke_results() if step == "smoke" else None,
            )
        )  # fmt: skip
    add_pull(session, shop, 43, status=EnvironmentStatus.QUEUED, title="Faster search")
    deploying = add_pull(session, shop, 44, status=EnvironmentStatus.DEPLOYING, server=pool[1])
    session.add(GithubUser(login=LONG[:39], source_schema="alice_schema"))
    scenario = Scenario(
        title=f"Checkout {LONG}", steps=[{"action": f"Open {LONG}", "expected": LONG}] * 3,
        labels=["needs-acceptance"], owner_id=admin.id,
    )  # fmt: skip
    session.add(scenario)
    session.flush()
    session.add(
        ScenarioAttachment(pull_request_id=failed.id, scenario_id=scenario.id, attached_by="x")
    )
    run = ScenarioRun(
        pull_request_id=failed.id, scenario_id=scenario.id, head_sha=failed.head_sha,
        server_name="stage-1", runner_id=admin.id, runner_name=admin.username,
        steps=scenario.steps, results=[{"status": "pass", "note": LONG}, {}, {}],
    )  # fmt: skip
    session.add(run)
    session.flush()
    session.commit()
    github_user = session.query(GithubUser).one()
    return {
        "pull_request_id": failed.id,
        "scenario_id": scenario.id,
        "run_id": run.id,
        "number": 1,
        "repository_id": shop.id,
        "schedule_id": schedule.id,
        "github_user_id": github_user.id,
        "user_id": admin.id,
        "server_id": pool[0].id,
        "deploying_pull_id": deploying.id,
    }


def page_paths(app: Flask, ids: dict[str, int]) -> list[str]:
    paths = []
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()) or rule.endpoint in NOT_PAGES:
            continue
        if rule.rule.startswith("/api/"):
            continue
        missing = set(rule.arguments) - set(ids)
        assert not missing, f"{rule.rule}: give this test an id for {missing}"
        with app.test_request_context():
            paths.append(url_for(rule.endpoint, **{k: ids[k] for k in rule.arguments}))
    return sorted(set(paths))


def overflow(page: Page) -> list[str]:
    """The elements sticking out past the right edge of the screen, if the page scrolls sideways."""
    result: list[str] = page.evaluate(
        """(screen) => {  // not innerWidth: a mobile browser widens that to the content
          if (document.documentElement.scrollWidth <= screen) return [];
          const out = [];
          for (const el of document.querySelectorAll('body *')) {
            const box = el.getBoundingClientRect();
            if (box.right > screen + 1 && box.width > 0) {
              out.push(el.tagName.toLowerCase() + (el.className ? '.' + el.className : '')
                       + ' right=' + Math.round(box.right));
            }
          }
          return [document.documentElement.scrollWidth + 'px wide', ...out.slice(0, 8)];
        }""",
        PHONE["width"],
    )
    return result


def test_no_page_is_wider_than_a_phone(live_server: LiveServer, phone: Page) -> None:
    with live_server.session_factory() as session:
        ids = seed(session)
    app = create_app(live_server.settings, session_factory=live_server.session_factory)
    paths = [*page_paths(app, ids), f"/pulls/{ids['deploying_pull_id']}/visit"]

    phone.goto(live_server.url + "/login")
    assert overflow(phone) == [], "/login"
    phone.get_by_label("Username").fill("phone-admin")
    phone.get_by_label("Password").fill(PASSWORD)
    phone.get_by_role("button", name="Log in").click()
    expect(phone.get_by_role("heading", name="Pull request environments")).to_be_visible()

    wide = {}
    for path in paths:
        if path == "/login":
            continue
        response = phone.goto(live_server.url + path)
        assert response is not None
        assert response.status == 200, path
        if found := overflow(phone):
            wide[path] = found
            screenshot(phone, "phone-overflow" + path.replace("/", "_"))
    assert wide == {}
    assert len(paths) >= 25  # the walk really covered the pages


def test_the_phone_menu_folds_the_nav_and_marks_the_current_page(
    live_server: LiveServer, phone: Page
) -> None:
    with live_server.session_factory() as session:
        accounts.create_user(session, "pat", PASSWORD, Role.ADMIN)
        session.commit()
    phone.goto(live_server.url + "/login")
    phone.get_by_label("Username").fill("pat")
    phone.get_by_label("Password").fill(PASSWORD)
    phone.get_by_role("button", name="Log in").click()
    nav = phone.get_by_role("navigation", name="Main")
    menu = phone.get_by_role("button", name="Menu")
    expect(nav).to_be_hidden()
    header = phone.locator("header.top").bounding_box()
    assert header is not None
    assert header["height"] < 80  # it was 207 px, a quarter of the screen
    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(nav).to_be_visible()
    nav.get_by_role("link", name="Servers").click()
    expect(phone.locator('#main-nav a[aria-current="page"]')).to_have_text("Servers")
    # The skip link is the first stop for a keyboard and lands on the content.
    phone.keyboard.press("Tab")
    expect(phone.get_by_role("link", name="Skip to content")).to_be_focused()
    phone.keyboard.press("Enter")
    expect(phone.locator("main#main")).to_be_focused()
    with live_server.session_factory() as session:
        assert session.query(User).count() == 1


def test_the_staging_link_of_a_deploying_pr_waits_then_opens_the_app(
    live_server: LiveServer, phone: Page
) -> None:
    """From the dashboard on a phone: the address links the visit page, which says the step
    and moves on by itself to the app (here /healthz stands in for it) once the PR is ready."""
    with live_server.session_factory() as session:
        accounts.create_user(session, "rev", PASSWORD, Role.MEMBER)
        server = add_server(session, 1)
        server.staging_url = f"{live_server.url}/healthz"
        pull = add_pull(
            session, add_repository(session), 42, status=EnvironmentStatus.DEPLOYING,
            server=server, title="Checkout: pay by invoice",
        )  # fmt: skip
        session.add(
            DeployStep(
                environment_id=pull.environments[-1].id, head_sha=pull.head_sha,
                step="build", status=StepStatus.RUNNING, log_tail="npm ci",
            )
        )  # fmt: skip
        session.commit()
        pull_id, environment_id = pull.id, pull.environments[-1].id
    phone.goto(live_server.url + "/login")
    phone.get_by_label("Username").fill("rev")
    phone.get_by_label("Password").fill(PASSWORD)
    phone.get_by_role("button", name="Log in").click()

    phone.get_by_role("link", name=f"{live_server.url}/healthz").click()
    expect(phone).to_have_url(f"{live_server.url}/pulls/{pull_id}/visit")
    expect(phone.get_by_role("status")).to_contain_text("#42 is deploying: step 3 of 7 (build)")
    screenshot(phone, "visit-deploying-phone")
    with live_server.session_factory() as session:  # the agent reported healthy
        environment = session.get(Environment, environment_id)
        assert environment is not None
        environment.status = EnvironmentStatus.READY
        session.commit()
    phone.wait_for_url(f"{live_server.url}/healthz", timeout=15_000)  # no reload by hand
