"""The results of a smoke run: one JSON shape the agent sends and the controller checks.

Standard library only: the agent builds these and the controller validates and words them, so
both sides agree on one shape.

Results (what the agent sends with the ``smoke`` step and the controller stores)::

    {"status": "pass"|"fail"|"error", "tier": "fast"|"deep",
     "counts": {"pass": n, "warn": n, "fail": n, "error": n, "timeout": n},
     "failed": [names of checks that failed, errored or timed out],
     "time_ms": n,
     "checks": [{"name", "tier", "type", "result", "duration_ms", "message",
                 "tests": [{"name", "result", "message"}]  # optional: an endpoint's own tests
                }]}

``status`` is ``fail`` when a check failed or timed out, else ``error`` when one errored, else
``pass``; anything but ``pass`` fails the deploy. A check's ``type`` is ``config`` when its entry
could not be read at all. ``warn`` (a ``severity = "warn"`` check that did not pass) is shown
and counted but fails nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pullre.smoke.config import TIERS
from pullre.smoke.formats import MAX_TESTS, TestOutcome

RESULTS = ("pass", "warn", "fail", "error", "timeout")
STATUSES = ("pass", "fail", "error")
#: What the controller stores per step; the agent shrinks its report to fit.
RESULTS_LIMIT = 64 * 1024


@dataclass(frozen=True)
class Result:
    name: str
    tier: str
    type: str
    result: str
    duration_ms: int
    message: str
    tests: tuple[TestOutcome, ...] = ()

    def to_json(self, with_tests: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "tier": self.tier,
            "type": self.type,
            "result": self.result,
            "duration_ms": self.duration_ms,
            "message": self.message[:500],
        }
        if self.tests and with_tests:
            body["tests"] = [test.to_json() for test in self.tests[:MAX_TESTS]]
        return body


@dataclass(frozen=True)
class Report:
    tier: str
    results: tuple[Result, ...]
    time_ms: int

    @property
    def counts(self) -> dict[str, int]:
        return {kind: sum(r.result == kind for r in self.results) for kind in RESULTS}

    @property
    def status(self) -> str:
        counts = self.counts
        if counts["fail"] or counts["timeout"]:
            return "fail"
        return "error" if counts["error"] else "pass"

    @property
    def failed(self) -> list[str]:
        return [r.name for r in self.results if r.result in {"fail", "error", "timeout"}]

    def to_json(self, limit: int = RESULTS_LIMIT) -> dict[str, Any]:
        """The documented shape, shrunk to ``limit`` bytes: sub-tests go first, then passes."""
        base: dict[str, Any] = {
            "status": self.status,
            "tier": self.tier,
            "counts": self.counts,
            "failed": self.failed,
            "time_ms": self.time_ms,
        }
        ordered = sorted(self.results, key=lambda r: r.result == "pass")  # problems first
        room = limit - len(json.dumps({**base, "checks": []}))
        for with_tests in (True, False):
            checks = []
            for result in ordered:
                entry = result.to_json(with_tests)
                room_after = room - len(json.dumps(entry)) - 2  # ", " between entries
                if room_after < 0:
                    break
                checks.append(entry)
                room = room_after
            else:
                return {**base, "checks": checks}
            room = limit - len(json.dumps({**base, "checks": []}))
        return {**base, "checks": checks}

    def text(self) -> str:
        """The step's human log: one line per check, then the verdict."""
        lines = [
            f"{r.result.upper():7} {r.name} ({r.type}, {r.duration_ms} ms): {r.message}"
            for r in self.results
        ]
        counts = ", ".join(f"{n} {kind}" for kind, n in self.counts.items() if n)
        lines.append(
            f"{self.tier} smoke checks: {self.status.upper()} ({counts}) in {self.time_ms} ms"
        )
        return "\n".join(lines)


# -- as people read them ----------------------------------------------------------------------

ELLIPSIS = "\u2026"
_COUNT_WORDS = (
    ("pass", "passed"),
    ("warn", "warned"),
    ("fail", "failed"),
    ("error", "errored"),
    ("timeout", "timed out"),
)


def counts_text(results: dict[str, Any]) -> str:
    """``5 passed, 1 failed``: numbers only, so it is safe to put anywhere without escaping."""
    counts = results.get("counts") or {}
    parts = [f"{counts[key]} {word}" for key, word in _COUNT_WORDS if counts.get(key)]
    return ", ".join(parts) or "no checks"


_PASSING = frozenset({"pass", "warn"})


def failed_tests(results: dict[str, Any]) -> list[dict[str, str]]:
    """Every app test that failed or errored inside a check, with the check it ran in."""
    found = []
    for check in results.get("checks") or []:
        for test in check.get("tests") or [] if isinstance(check, dict) else []:
            if isinstance(test, dict) and test.get("result") not in _PASSING:
                found.append({"check": str(check.get("name", "")), **test})
    return found


def failing_names(results: dict[str, Any]) -> list[str]:
    """What did not pass, most precisely named: a failing check that ran an app's own tests is
    named by its failing tests (``shop.smoke.CheckoutTest.test_pay``), any other by itself."""
    tests: dict[str, list[str]] = {}
    for test in failed_tests(results):
        tests.setdefault(test["check"], []).append(str(test.get("name", "")))
    names: list[str] = []
    for name in results.get("failed") or []:
        names += tests.get(str(name)) or [str(name)]
    return names


def summary(results: dict[str, Any], limit: int = 140) -> str:
    """``3 passed, 1 failed: shop.smoke.CheckoutTest.test_pay``, within ``limit`` (GitHub keeps
    140 characters of a commit status description): as many failing names as fit whole, then
    ``and N more``, so a cut never misstates a count or half a name."""
    text = counts_text(results)
    names = failing_names(results)
    if not names:
        return text[:limit]
    text, shown = f"{text}: {names[0]}", 1
    for name in names[1:]:
        left = len(names) - shown - 1
        candidate = f"{text}, {name}"
        if len(candidate + (f" and {left} more" if left else "")) > limit:
            break
        text, shown = candidate, shown + 1
    more = f" and {len(names) - shown} more" if shown < len(names) else ""
    if len(text) + len(more) > limit:  # the first name alone is too long: cut it, keep the rest
        text = text[: limit - len(more) - 1] + ELLIPSIS
    return text + more


def short_label(results: dict[str, Any], width: int = 30) -> str:
    """``pass 5/5`` or ``fail 1/5 (checkout page…)``: what fits a dashboard cell."""
    counts = results.get("counts") or {}
    total = sum(v for v in counts.values() if isinstance(v, int))
    bad = sum(counts.get(k, 0) for k in ("fail", "error", "timeout"))
    status = str(results.get("status", ""))
    if status == "pass":
        return f"pass {total - bad}/{total}"
    failed = failing_names(results)
    label = f"{status} {bad}/{total}"
    if failed:
        first = failed[0]
        cut = len(failed) > 1 or len(first) > width
        label += f" ({first[:width]}{'…' if cut else ''})"
    return label


_CHECK_KEYS = {"name", "tier", "type", "result", "duration_ms", "message"}


def validate_results(body: object) -> str | None:
    """Why ``body`` is not a results object in the documented shape, or None when it is."""
    if not isinstance(body, dict):
        return "results must be an object"
    problem = _top_problem(body)
    if problem is None:
        problem = next(filter(None, map(_check_problem, body["checks"])), None)
    return problem


def _top_problem(body: dict[str, Any]) -> str | None:
    if set(body) != {"status", "tier", "counts", "failed", "time_ms", "checks"}:
        return "results must have exactly status, tier, counts, failed, time_ms and checks"
    counts = body["counts"]
    failed = body["failed"]
    rules = [
        (body["status"] in STATUSES and body["tier"] in TIERS, "an unknown status or tier"),
        (isinstance(counts, dict) and set(counts) == set(RESULTS), "counts of each result"),
        (isinstance(counts, dict) and all(map(_count, counts.values())), "whole-number counts"),
        (_count(body["time_ms"]), "time_ms a whole number >= 0"),
        (isinstance(failed, list) and all(isinstance(n, str) for n in failed), "failed names"),
        (isinstance(body["checks"], list), "checks a list"),
    ]
    for ok, what in rules:
        if not ok:
            return f"results: {what} expected"
    bad = counts["fail"] + counts["error"] + counts["timeout"]
    if (body["status"] == "pass") != (bad == 0):
        return "results: status does not agree with its counts"
    return None


def _check_problem(check: object) -> str | None:
    if not isinstance(check, dict) or not _CHECK_KEYS <= set(check) <= {*_CHECK_KEYS, "tests"}:
        return f"each check must have {', '.join(sorted(_CHECK_KEYS))} (and optionally tests)"
    if not all(isinstance(check[k], str) for k in ("name", "type", "message")):
        return "a check's name, type and message must be strings"
    if check["tier"] not in TIERS or check["result"] not in RESULTS:
        return "a check's tier or result is not a known value"
    if not _count(check["duration_ms"]):
        return "a check's duration_ms must be a whole number >= 0"
    tests = check.get("tests", [])
    if not isinstance(tests, list) or not all(
        isinstance(t, dict)
        and set(t) == {"name", "result", "message"}
        and all(isinstance(v, str) for v in t.values())
        for t in tests
    ):
        return "a check's tests must be a list of {name, result, message} strings"
    return None


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
