"""``pullre/smoke``'s description names the failing app tests, within GitHub's 140 characters."""

from __future__ import annotations

from typing import Any

from pullre.smoke.results import failed_tests, failing_names, short_label, summary


def app_check(name: str, result: str, *tests: tuple[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "tier": "fast",
        "type": "smoketest",
        "result": result,
        "duration_ms": 5,
        "message": "",
        "tests": [{"name": n, "result": r, "message": f"{n} {r}"} for n, r in tests],
    }


def results(*checks: dict[str, Any]) -> dict[str, Any]:
    kinds = ("pass", "warn", "fail", "error", "timeout")
    counts = {kind: sum(c["result"] == kind for c in checks) for kind in kinds}
    failed = [c["name"] for c in checks if c["result"] in {"fail", "error", "timeout"}]
    return {"status": "fail" if failed else "pass", "tier": "fast", "counts": counts,
            "failed": failed, "time_ms": 1, "checks": list(checks)}  # fmt: skip


def test_the_failing_app_test_is_named_instead_of_its_check() -> None:
    found = results(
        app_check("home", "pass"),
        app_check("health", "pass"),
        app_check("admin", "pass"),
        app_check(
            "app smoke tests",
            "fail",
            ("shop.smoke.CartTest.test_add", "warn"),
            ("shop.smoke.CheckoutTest.test_pay", "fail"),
        ),
    )
    assert summary(found) == "3 passed, 1 failed: shop.smoke.CheckoutTest.test_pay"
    assert failing_names(found) == ["shop.smoke.CheckoutTest.test_pay"]
    assert failed_tests(found) == [
        {
            "check": "app smoke tests",
            "name": "shop.smoke.CheckoutTest.test_pay",
            "result": "fail",
            "message": "shop.smoke.CheckoutTest.test_pay fail",
        }
    ]
    assert short_label(found) == "fail 1/4 (shop.smoke.CheckoutTest.test_p…)"  # a cell


def test_a_check_without_app_tests_is_named_by_itself() -> None:
    found = results(app_check("checkout page", "fail"), app_check("home", "pass"))
    assert summary(found) == "1 passed, 1 failed: checkout page"


def test_many_failures_fit_in_140_characters_with_whole_names() -> None:
    tests = [(f"shop.smoke.CheckoutTest.test_step_{n:02}", "error") for n in range(20)]
    found = results(app_check("app smoke tests", "error", *tests), app_check("ping", "fail"))
    text = summary(found)
    assert len(text) <= 140
    assert text.startswith("1 failed, 1 errored: shop.smoke.CheckoutTest.test_step_00, ")
    shown = text.split(": ", 1)[1].split(" and ")[0].split(", ")
    assert all(name.startswith("shop.smoke.CheckoutTest.test_step_") for name in shown)
    assert text.endswith(f" and {21 - len(shown)} more")
    assert len(failed_tests(found)) == 20  # the API gives them all


def test_one_name_longer_than_the_limit_is_cut_and_the_rest_still_counted() -> None:
    found = results(
        app_check("app", "fail", ("x" * 300, "fail"), ("shop.smoke.T.test_b", "fail")),
    )
    text = summary(found)
    assert len(text) == 140
    assert text.endswith("… and 1 more")
    assert text.startswith("1 failed: xxx")
