"""The PR comment's words for failures: ``smoke failing`` apart from ``failed``, said once."""

from __future__ import annotations

from typing import Any

from pullre.models import EnvironmentStatus, StepStatus
from pullre.reporting.comment import render
from pullre.reporting.facts import EnvironmentFacts, PullFacts
from pullre.reporting.verdicts import comment_view

HEAD = "a" * 40
PAGE = "https://pullre.example/pulls/3"
APP_TESTS: dict[str, Any] = {
    "status": "fail", "tier": "fast", "time_ms": 9,
    "counts": {"pass": 3, "warn": 0, "fail": 1, "error": 0, "timeout": 0},
    "failed": ["app smoke tests"],
    "checks": [{
        "name": "app smoke tests", "tier": "fast", "type": "smoketest", "result": "fail",
        "duration_ms": 5, "message": "1 of 12 failed",
        "tests": [{"name": "shop.smoke.CheckoutTest.test_pay", "result": "fail", "message": "402"}],
    }],
}  # fmt: skip


def comment(**changes: Any) -> str:
    values: dict[str, Any] = {
        "id": 1, "status": EnvironmentStatus.FAILED, "staging_url": "https://stage-1.example",
        "deployed_sha": HEAD, "redeploy_requested": False, "last_error": None,
        "queue_position": None, "smoke": None,
    }  # fmt: skip
    env = EnvironmentFacts(**{**values, **changes})
    pull = PullFacts(id=3, owner="acme", name="shop", number=7, head_sha=HEAD, environments=[env])
    return render(comment_view(pull, env, PAGE))


def test_an_app_up_with_failing_smoke_checks_is_smoke_failing_named_once() -> None:
    body = comment(
        last_error="smoke failed: FAIL app smoke tests (smoketest, 5 ms): 1 of 12 failed",
        smoke_step=StepStatus.FAILED,
        smoke_results=APP_TESTS,
    )
    assert "**Staging environment:** smoke failing — the app runs" in body
    assert "deploy failed" not in body
    assert "- **Staging:** [open staging](https://pullre.example/pulls/3/visit)" in body
    assert "not passing: `shop.smoke.CheckoutTest.test_pay`" in body
    assert "Last error" not in body  # the smoke line says it; no second copy


def test_a_deploy_that_did_not_come_up_is_failed_with_one_plain_error_block() -> None:
    body = comment(
        last_error=(
            "health failed: GET / answered 404\n<!DOCTYPE html><html><head><title>Not Found"
            "</title></head><body><h1>Not Found</h1></body></html>"
        ),
    )
    assert "**Staging environment:** deploy failed" in body
    assert body.count("**Last error**") == 1
    assert "```text\nhealth failed: GET / answered 404\nNot Found\n```" in body
    assert "<h1>" not in body
