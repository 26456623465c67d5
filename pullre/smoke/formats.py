"""Reading an app's own smoke endpoint: django-smoketest (plain text or JSON) and hospital JSON.

Standard library only: the staging agent imports this (see ``pullre.smoke.runner``).

The rule throughout is that a body this module cannot fully account for is an ``error``, never a
``pass``: an endpoint that answers a login page, half a report or ``PASS`` with no tests run
proves nothing about the deploy, and reading it as green would hide exactly the broken deploys
smoke checks exist to catch. When a report's headline and its counts disagree the worse one wins.

Formats, as the projects publish them:

django-smoketest (ccnmtl) plain text::

    PASS|FAIL
    test classes: N
    tests run: N
    tests passed: N
    tests failed: N
    tests errored: N
    time: 12.5ms

    main.smoke.DBTest.test_x failed: message
    main.smoke.DBTest.test_y errored: message

and its JSON form (sent when the request accepts ``application/json``): ``status``,
``test_classes``, ``tests_run``, ``tests_passed``, ``tests_failed``, ``tests_errored``,
``failed_tests``, ``errored_tests`` (lists of strings), ``time`` (ms).

hospital (python-hospital, ``hospital.wsgi``): ``{"status": "pass"|"fail", "summary": {...},
"details": [{"test": title, "status": "pass"|"fail"|"error"|"skip"|"expected_failure"|
"unexpected_success", "context": "..."}]}``, answered with HTTP 500 when something failed. The
looser health-endpoint shape ``{"status": "ok"|"error", "checks": {name: {"status": ...} or
"ok"}}`` is read the same way.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

FORMATS = ("auto", "django-smoketest", "hospital")
#: Sub-tests kept per endpoint: enough to say what broke, small enough for the step report.
MAX_TESTS = 20
_COUNT_KEYS = ("test classes", "tests run", "tests passed", "tests failed", "tests errored")
_COUNT_LINE = re.compile(
    r"^(test classes|tests run|tests passed|tests failed|tests errored):\s*(\d+)$"
)
_TIME_LINE = re.compile(r"^time:\s*(\d+(?:\.\d*)?)\s*ms$")
_TEST_LINE = re.compile(r"^(\S+) (failed|errored)(?::\s*(.*))?$")
_GOOD = {"pass", "ok", "passed", "success", "healthy", "up", "working", "expected_failure"}
_WARN = {"warn", "warning", "skip", "skipped", "degraded"}
_BAD = {"fail", "failed", "failure", "unexpected_success", "down", "unhealthy", "critical"}
_ERROR = {"error", "errored"}
_RANK = {"pass": 0, "warn": 1, "fail": 2, "error": 3}


@dataclass(frozen=True)
class TestOutcome:
    """One test inside an app's smoke report that did not simply pass."""

    name: str
    result: str
    message: str = ""

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "result": self.result, "message": self.message}


@dataclass(frozen=True)
class Outcome:
    """What one check found: ``pass``/``warn``/``fail``/``error`` and a line saying why."""

    result: str
    message: str
    tests: tuple[TestOutcome, ...] = ()


class Malformed(ValueError):
    """The body is not the format it claims (or any format, for ``auto``)."""


def parse(body: bytes, fmt: str = "auto") -> Outcome:
    """The normalised outcome of a smoke endpoint's body; malformed bodies are ``error``."""
    try:
        return _parse(body, fmt)
    except Malformed as exc:
        return Outcome("error", f"unreadable {fmt} report: {exc}")


def _parse(body: bytes, fmt: str) -> Outcome:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed("the body is not UTF-8") from None
    stripped = text.strip()
    if not stripped:
        raise Malformed("the body is empty")
    data: Any = None
    if stripped[0] in "{[":
        try:
            data = json.loads(stripped)
        except ValueError as exc:
            raise Malformed(f"invalid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise Malformed("the JSON body is not an object")
    if fmt == "django-smoketest":
        return smoketest_json(data) if data is not None else smoketest_text(stripped)
    if fmt == "hospital":
        if data is None:
            raise Malformed("the body is not JSON")
        return hospital_json(data)
    if data is None:
        return smoketest_text(stripped)
    if "tests_run" in data:
        return smoketest_json(data)
    if "details" in data or "checks" in data:
        return hospital_json(data)
    raise Malformed("JSON with neither tests_run (django-smoketest) nor details/checks (hospital)")


def smoketest_text(text: str) -> Outcome:
    lines = [line.strip() for line in text.strip().splitlines()]
    headline = lines[0]
    if headline not in {"PASS", "FAIL"}:
        raise Malformed(f"the first line is {headline[:60]!r}, not PASS or FAIL")
    counts: dict[str, int] = {}
    time_ms: float | None = None
    tests: list[TestOutcome] = []
    for line in lines[1:]:
        if not line:
            continue
        if match := _COUNT_LINE.match(line):
            counts[match[1]] = int(match[2])
        elif match := _TIME_LINE.match(line):
            time_ms = float(match[1])
        elif match := _TEST_LINE.match(line):
            result = "fail" if match[2] == "failed" else "error"
            tests.append(TestOutcome(match[1], result, (match[3] or "")[:300]))
        # Anything else continues the message of the test above (a traceback, say).
    missing = [key for key in _COUNT_KEYS if key not in counts]
    if missing or time_ms is None:
        raise Malformed(
            f"missing line(s): {', '.join([*missing, *(['time'] if time_ms is None else [])])}"
        )
    run, passed, failed, errored = (
        counts[f"tests {k}"] for k in ("run", "passed", "failed", "errored")
    )
    return _smoketest(headline, (run, passed, failed, errored), tests)


def smoketest_json(data: dict[str, Any]) -> Outcome:
    def count(key: str) -> int:
        value = data.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise Malformed(f"{key!r} is not a count")
        return value

    def names(key: str) -> list[str]:
        value = data.get(key)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise Malformed(f"{key!r} is not a list of strings")
        return value

    status = data.get("status")
    if status not in {"PASS", "FAIL"}:
        raise Malformed(f"'status' is {status!r}, not PASS or FAIL")
    if not isinstance(data.get("time"), int | float) or isinstance(data.get("time"), bool):
        raise Malformed("'time' is not a number of milliseconds")
    tests = [_listed(entry, "fail") for entry in names("failed_tests")]
    tests += [_listed(entry, "error") for entry in names("errored_tests")]
    counts = (
        count("tests_run"),
        count("tests_passed"),
        count("tests_failed"),
        count("tests_errored"),
    )
    return _smoketest(status, counts, tests)


def _listed(entry: str, result: str) -> TestOutcome:
    """django-smoketest lists ``"name failed: message"`` (or any text, for import errors)."""
    match = _TEST_LINE.match(entry.strip())
    if match:
        return TestOutcome(match[1], result, (match[3] or "")[:300])
    return TestOutcome(entry.strip()[:200], result)


def _smoketest(
    headline: str, counts: tuple[int, int, int, int], tests: list[TestOutcome]
) -> Outcome:
    run, passed, failed, errored = counts
    summary = f"{run} run, {passed} passed, {failed} failed, {errored} errored"
    if run == 0:
        return Outcome("error", f"django-smoketest ran no tests ({summary}): nothing was checked")
    if errored or any(t.result == "error" for t in tests):
        result = "error"
    elif failed or headline == "FAIL" or passed < run:
        result = "fail"
    else:
        result = "pass"
    named = [t.name for t in tests]
    detail = f": {', '.join(named[:5])}" if named else ""
    return Outcome(
        result, f"django-smoketest {headline}, {summary}{detail}", tuple(tests[:MAX_TESTS])
    )


def hospital_json(data: dict[str, Any]) -> Outcome:
    status = data.get("status")
    if not isinstance(status, str) or _normalise(status) is None:
        raise Malformed(f"'status' is {status!r}, not a known status")
    headline = _normalise(status) or "error"
    entries = _hospital_entries(data)
    if not entries:
        return Outcome(
            "error", f"the health report ({status}) lists no checks: nothing was checked"
        )
    worst = max([headline, *(t.result for t in entries)], key=_RANK.__getitem__)
    bad = [t for t in entries if t.result != "pass"]
    detail = f": {', '.join(f'{t.name} {t.result}' for t in bad[:5])}" if bad else ""
    message = f"health report {status}, {len(entries)} checks, {len(bad)} not passing{detail}"
    return Outcome(worst, message, tuple(bad[:MAX_TESTS]))


def _hospital_entries(data: dict[str, Any]) -> list[TestOutcome]:
    entries: list[TestOutcome] = []
    if "details" in data:
        details = data["details"]
        if not isinstance(details, list):
            raise Malformed("'details' is not a list")
        for item in details:
            if not isinstance(item, dict) or not isinstance(item.get("test"), str):
                raise Malformed("a 'details' entry has no 'test' title")
            entries.append(_entry(item["test"], item.get("status"), item.get("context")))
    if "checks" in data:
        checks = data["checks"]
        if not isinstance(checks, dict):
            raise Malformed("'checks' is not an object")
        for name, item in checks.items():
            if isinstance(item, dict):
                message = item.get("message", item.get("error", item.get("context")))
                entries.append(_entry(name, item.get("status"), message))
            else:
                entries.append(_entry(name, item, None))
    return entries


def _entry(name: str, status: object, context: object) -> TestOutcome:
    result = _normalise(status) if isinstance(status, str) else None
    if result is None:
        raise Malformed(f"check {name[:80]!r} has status {status!r}")
    message = context if isinstance(context, str) else ""
    return TestOutcome(name[:200], result, message.strip()[-300:])


def _normalise(status: str) -> str | None:
    word = status.strip().lower()
    for result, words in (("pass", _GOOD), ("warn", _WARN), ("fail", _BAD), ("error", _ERROR)):
        if word in words:
            return result
    return None
