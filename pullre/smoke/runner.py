"""Smoke checks: declared in ``.pullre.toml``, run in parallel after a deploy, reported as JSON.

Standard library only, because the staging agent imports it (with ``pullre.smoke.checks`` and
``pullre.smoke.formats``), and the controller uses the same module to validate what agents send,
so both sides agree on one results shape.

Declaring checks (``[[smoke]]`` tables; ``tier`` is ``fast`` — after every deploy — or ``deep``;
``timeout`` is seconds, default 10; ``severity = "warn"`` shows a failure without failing)::

    [[smoke]]
    name = "home page"
    type = "http"            # path or url, method, status (int or list), contains, regex, headers
    path = "/"
    contains = "Welcome"
    [[smoke]]
    name = "redis"
    type = "tcp"             # address = "host:port" (or host + port)
    address = "127.0.0.1:6379"
    [[smoke]]
    name = "products exist"
    type = "sql"             # query; expect = first value of the first row, else: any row
    query = "SELECT COUNT(*) > 0 FROM products"
    expect = "1"
    [[smoke]]
    name = "manage.py check"
    type = "command"         # argv list, or a string run by sh -c; exit status 0 passes
    command = ["python", "manage.py", "check"]
    [[smoke]]
    name = "app smoke tests"
    type = "smoketest"       # format = "auto" | "django-smoketest" | "hospital"
    path = "/smoketest/"

An entry that cannot be used becomes one ``error`` result naming the problem: a typo must show
up red, never as a pass with one check fewer.

The results' shape lives in :mod:`pullre.smoke.results`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from pullre.smoke.checks import CheckTimeout, Target
from pullre.smoke.config import TIERS, TYPES, Check, parse_checks
from pullre.smoke.formats import Outcome, TestOutcome
from pullre.smoke.results import Report, Result

__all__ = [
    "TIERS",
    "TYPES",
    "Check",
    "Report",
    "Result",
    "Target",
    "parse_checks",
    "run",
    "select",
]

DEFAULT_BUDGET_S = 60.0
WORKERS = 4


def select(checks: Iterable[Check], tier: str) -> list[Check]:
    return [check for check in checks if check.tier == tier]


def run(
    checks: Sequence[Check],
    tier: str,
    target: Target,
    *,
    budget: float = DEFAULT_BUDGET_S,
    workers: int = WORKERS,
) -> Report:
    """Run ``tier``'s checks in parallel; the whole run returns within ``budget`` seconds.

    A check that overruns its own timeout (or the budget) is reported ``timeout`` and left to
    its thread, which its own deadline ends soon after; the deploy does not wait for it.
    """
    chosen = select(checks, tier)
    began = time.monotonic()
    budget_end = began + budget
    started: dict[int, float] = {}
    lock = threading.Lock()
    results: dict[int, Result] = {}

    def execute(index: int, check: Check) -> Result:
        start = time.monotonic()
        with lock:
            started[index] = start
        return _execute(check, target, min(start + check.timeout, budget_end), start)

    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="smoke")
    try:
        pending: dict[Future[Result], int] = {
            pool.submit(execute, index, check): index for index, check in enumerate(chosen)
        }
        while pending:
            now = time.monotonic()
            with lock:
                ends = [started[i] + chosen[i].timeout for i in pending.values() if i in started]
            soonest = min([budget_end, *ends]) + 0.5  # grace: a check reports its own timeout
            done, _ = wait(pending, timeout=max(0.0, soonest - now), return_when=FIRST_COMPLETED)
            for future in done:
                results[pending.pop(future)] = future.result()
            now = time.monotonic()
            for future, index in list(pending.items()):
                check = chosen[index]
                with lock:
                    start = started.get(index)
                if start is not None and now >= start + check.timeout + 0.5:
                    message = f"no result within its timeout of {check.timeout:g} s"
                elif now >= budget_end + 0.5:
                    message = f"not finished within the total budget of {budget:g} s"
                else:
                    continue
                future.cancel()
                del pending[future]
                results[index] = _result(check, "timeout", message, start=start or now, end=now)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    ordered = tuple(results[index] for index in range(len(chosen)))
    return Report(tier, ordered, int((time.monotonic() - began) * 1000))


def _execute(check: Check, target: Target, deadline: float, start: float) -> Result:
    if check.spec is None:
        return _result(check, "error", check.problem, start=start, end=start)
    try:
        if time.monotonic() >= deadline:
            raise CheckTimeout("the total budget ran out before this check started")
        outcome = check.spec.run(target, deadline)
    except CheckTimeout as exc:
        outcome = Outcome("timeout", f"{exc} (timeout {check.timeout:g} s)")
    except Exception as exc:  # any crash of one check is that check's error, not the run's
        outcome = Outcome("error", f"{type(exc).__name__}: {exc}")
    result = outcome.result
    if check.warn_only and result in {"fail", "error", "timeout"}:
        result = "warn"
    return _result(
        check, result, outcome.message, start=start, end=time.monotonic(), tests=outcome.tests
    )


def _result(
    check: Check,
    result: str,
    message: str,
    *,
    start: float,
    end: float,
    tests: tuple[TestOutcome, ...] = (),
) -> Result:
    duration = int(max(0.0, end - start) * 1000)
    return Result(check.name, check.tier, check.type, result, duration, message, tests)
