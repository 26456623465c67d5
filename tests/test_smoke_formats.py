"""Apps' own smoke endpoints: django-smoketest (text and JSON) and hospital JSON, read for real."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from pullre.smoke import results as smoke_results
from pullre.smoke import runner as smoke
from pullre.smoke.formats import parse
from tests.test_smoke import Web, run_one, serving

SMOKETEST_PASS = """PASS
test classes: 2
tests run: 5
tests passed: 5
tests failed: 0
tests errored: 0
time: 41.0021ms

"""

SMOKETEST_FAIL = """FAIL
test classes: 2
tests run: 5
tests passed: 3
tests failed: 1
tests errored: 1
time: 60.5ms

main.smoke.DBTest.test_users failed: 0 users in the database

main.smoke.CacheTest.test_redis errored: ConnectionError: refused
Traceback (most recent call last):
  File "x.py", line 1
"""


@pytest.fixture
def web() -> Iterator[Web]:
    with serving() as state:
        yield state


def smoketest_json(**changes: Any) -> bytes:
    body: dict[str, Any] = {
        "status": "PASS",
        "test_classes": 1,
        "tests_run": 3,
        "tests_passed": 3,
        "tests_failed": 0,
        "tests_errored": 0,
        "failed_tests": [],
        "errored_tests": [],
        "time": 12.5,
    }
    body.update(changes)
    return json.dumps(body).encode()


def hospital(status: str, *details: tuple[str, str]) -> bytes:
    return json.dumps(
        {
            "status": status,
            "summary": {"total": len(details)},
            "details": [
                {
                    "test": name,
                    "status": result,
                    **({"context": "boom"} if result != "pass" else {}),
                }
                for name, result in details
            ],
        }
    ).encode()


def test_django_smoketest_plain_text_pass() -> None:
    outcome = parse(SMOKETEST_PASS.encode(), "django-smoketest")
    assert outcome.result == "pass"
    assert "5 run, 5 passed, 0 failed, 0 errored" in outcome.message
    assert outcome.tests == ()


def test_django_smoketest_plain_text_failures_are_named() -> None:
    outcome = parse(SMOKETEST_FAIL.encode(), "auto")
    assert outcome.result == "error"  # an errored test is worse than a failed one
    assert [(t.name, t.result) for t in outcome.tests] == [
        ("main.smoke.DBTest.test_users", "fail"),
        ("main.smoke.CacheTest.test_redis", "error"),
    ]
    assert outcome.tests[0].message == "0 users in the database"
    only_failed = SMOKETEST_FAIL.replace("tests errored: 1", "tests errored: 0").replace(
        "test_redis errored", "test_redis failed"
    )
    assert parse(only_failed.encode(), "django-smoketest").result == "fail"


def test_django_smoketest_json_form() -> None:
    assert parse(smoketest_json(), "django-smoketest").result == "pass"
    failing = parse(
        smoketest_json(
            status="FAIL",
            tests_passed=1,
            tests_failed=2,
            failed_tests=["a.smoke.T.test_one failed: nope", "a.smoke.T.test_two failed"],
        ),
        "auto",
    )
    assert failing.result == "fail"
    assert [t.name for t in failing.tests] == ["a.smoke.T.test_one", "a.smoke.T.test_two"]
    assert "a.smoke.T.test_one" in failing.message
    # An import error is listed as a free-text errored test: still an error, never a pass.
    broken = parse(
        smoketest_json(
            status="FAIL",
            tests_run=1,
            tests_passed=0,
            tests_errored=1,
            errored_tests=["Exception while importing smoke test script: No module named x"],
        ),
        "django-smoketest",
    )
    assert broken.result == "error"


def test_the_worse_of_headline_and_counts_wins() -> None:
    lying = SMOKETEST_PASS.replace("tests passed: 5", "tests passed: 4").replace(
        "tests failed: 0", "tests failed: 1"
    )
    assert parse(lying.encode(), "django-smoketest").result == "fail"
    assert parse(smoketest_json(status="FAIL"), "django-smoketest").result == "fail"
    assert parse(hospital("pass", ("a", "pass"), ("b", "fail")), "hospital").result == "fail"


def test_hospital_json() -> None:
    ok = parse(hospital("pass", ("db answers", "pass"), ("docs", "expected_failure")), "hospital")
    assert ok.result == "pass"
    assert "2 checks, 0 not passing" in ok.message
    skipped = parse(hospital("pass", ("db", "pass"), ("mail", "skip")), "auto")
    assert skipped.result == "warn"
    failed = parse(hospital("fail", ("db", "pass"), ("cache", "fail"), ("s3", "error")), "auto")
    assert failed.result == "error"
    assert [(t.name, t.result, t.message) for t in failed.tests] == [
        ("cache", "fail", "boom"),
        ("s3", "error", "boom"),
    ]


def test_health_checks_object_form() -> None:
    body = {"status": "error", "checks": {"db": {"status": "ok"}, "redis": "down"}}
    outcome = parse(json.dumps(body).encode(), "auto")
    assert outcome.result == "error"
    assert [(t.name, t.result) for t in outcome.tests] == [("redis", "fail")]
    good = {"status": "ok", "checks": {"db": "ok", "queue": {"status": "healthy"}}}
    assert parse(json.dumps(good).encode(), "hospital").result == "pass"


@pytest.mark.parametrize(
    ("body", "fmt"),
    [
        (b"", "auto"),
        (b"\xff\xfe", "auto"),
        (b"<html><body>Please log in</body></html>", "auto"),
        (b"<html><body>Please log in</body></html>", "django-smoketest"),
        (b"PASS\n", "django-smoketest"),  # no counts at all
        (SMOKETEST_PASS.replace("tests run: 5\n", "").encode(), "django-smoketest"),
        (SMOKETEST_PASS.replace("time: 41.0021ms", "").encode(), "django-smoketest"),
        (SMOKETEST_PASS.replace("tests run: 5", "tests run: 0").encode(), "django-smoketest"),
        (SMOKETEST_PASS.encode(), "hospital"),  # right body, wrong declared format
        (b'{"status": "PASS", "tests_run": 3', "auto"),  # cut short
        (b"[1, 2]", "auto"),
        (b'{"hello": "world"}', "auto"),
        (smoketest_json(tests_run="3"), "django-smoketest"),
        (smoketest_json(tests_failed=True), "django-smoketest"),
        (smoketest_json(status="OK"), "django-smoketest"),
        (smoketest_json(failed_tests="a failed"), "django-smoketest"),
        (smoketest_json(time=None), "django-smoketest"),
        (smoketest_json(tests_run=0, tests_passed=0), "django-smoketest"),
        (b'{"status": "pass", "details": []}', "hospital"),  # nothing checked
        (b'{"status": "pass", "details": {"a": "pass"}}', "hospital"),
        (b'{"status": "pass", "details": [{"status": "pass"}]}', "hospital"),
        (b'{"status": "pass", "details": [{"test": "a", "status": "maybe"}]}', "hospital"),
        (b'{"status": "fine", "details": [{"test": "a", "status": "pass"}]}', "hospital"),
        (b'{"status": "ok", "checks": ["db"]}', "hospital"),
        (b'{"status": "ok"}', "hospital"),
    ],
)
def test_malformed_bodies_are_errors_never_passes(body: bytes, fmt: str) -> None:
    outcome = parse(body, fmt)
    assert outcome.result == "error", outcome


# -- through a real endpoint ---------------------------------------------------------------------


def test_smoketest_check_reads_a_real_endpoint(web: Web) -> None:
    web.route("/smoke/text", SMOKETEST_FAIL)
    web.route("/smoke/json", smoketest_json(), kind="application/json")
    web.route("/health", hospital("fail", ("db", "fail")), status=500, kind="application/json")
    web.route("/login", "<html>log in</html>", kind="text/html")
    report = smoke.run(
        smoke.parse_checks(
            [
                {"name": "text", "type": "smoketest", "path": "/smoke/text"},
                {"name": "json", "type": "smoketest", "path": "/smoke/json"},
                {"name": "hospital", "type": "smoketest", "path": "/health", "format": "hospital"},
                {"name": "login", "type": "smoketest", "path": "/login"},
                {"name": "gone", "type": "smoketest", "path": "/missing"},
            ]
        ),
        "fast",
        smoke.Target(port=web.port),
    )
    results = {r.name: r for r in report.results}
    assert {name: r.result for name, r in results.items()} == {
        "text": "error",
        "json": "pass",
        "hospital": "fail",  # its 500 carries a readable report: the report decides
        "login": "error",
        "gone": "error",
    }
    assert "-> 404" in results["gone"].message
    assert [t.name for t in results["text"].tests] == [
        "main.smoke.DBTest.test_users",
        "main.smoke.CacheTest.test_redis",
    ]
    # django-smoketest answers JSON only to a client that accepts it.
    assert all("application/json" in accept for accept in web.accepts)
    body = report.to_json()
    assert smoke_results.validate_results(body) is None
    text_entry = next(c for c in body["checks"] if c["name"] == "text")
    assert text_entry["tests"][0] == {
        "name": "main.smoke.DBTest.test_users",
        "result": "fail",
        "message": "0 users in the database",
    }


def test_a_smoketest_endpoint_that_never_answers_times_out(web: Web) -> None:
    result = run_one(
        {"type": "smoketest", "path": "/sleep?s=2", "timeout": 0.3}, smoke.Target(port=web.port)
    )
    assert result.result == "timeout"
