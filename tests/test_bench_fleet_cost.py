"""bench/fleet_cost.py on a tiny month, so the benchmark cannot rot unnoticed.

One simulated day (a Monday, so office hours open and close) of a busy small pool, with
expiry on so every policy acts: the script must print both runs side by side, the policies
must save instance-hours, and skipping the passes that cannot change anything must not change a
single number.
"""

from __future__ import annotations

import re

import pytest

from bench import fleet_cost

TINY = [
    "--days", "1", "--servers", "5", "--prs-per-day", "10", "--step-minutes", "15",
    "--ttl-hours", "6", "--expiry-warning-hours", "2", "--seed", "1",
]  # fmt: skip
ROWS = [
    "instance-hours",
    "of which no PR's",
    "cost (USD)",
    "stays on the pool",
    "queue wait p50 (min)",
    "queue wait p95 (min)",
    "in working time p50",
    "in working time p95",
    "reviewer waits",
    "reviewer wait p50 (min)",
    "reviewer wait p95 (min)",
]


def run(capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    assert fleet_cost.main([*TINY, *extra]) == 0
    return capsys.readouterr().out


def table(out: str) -> dict[str, tuple[str, str, str]]:
    """Label -> (always on, policies on, ratio), read back from the printed table."""
    rows = {}
    for line in out.splitlines():
        label, *cells = line[:26].strip(), *line[26:].split()
        if label in ROWS and len(cells) == 3:
            rows[label] = (cells[0], cells[1], cells[2])
    return rows


def summary_line(out: str, name: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(f"{name}: visits found"))


def summary(out: str, name: str) -> dict[str, int]:
    """What the visits found and what the policies did: "slept 12" -> {"slept": 12}."""
    return {word: int(n) for word, n in re.findall(r"(\w+) (\d+)", summary_line(out, name))}


def passes(line: str) -> int:
    found = re.search(r"(\d+) passes in", line)
    assert found is not None, line
    return int(found.group(1))


def test_policies_on_beside_always_on_and_skipping_changes_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Both runs in spawned processes, as a full run.
    out = run(capsys, "--jobs", "2")

    assert out.startswith("1 days from 2026-03-02 (Europe/Amsterdam), 3 repositories: ")
    assert (
        "policies on: idle sleep after 120 min, reclaim after 30 min queued, office hours "
        "Mon-Fri 08:00-19:00, expiry after 6 h (warned 2 h before)" in out
    )
    rows = table(out)
    assert list(rows) == ROWS
    always, policies, ratio = rows["instance-hours"]
    assert 0 < float(policies) <= float(always)
    assert ratio == f"{float(policies) / float(always):.2f}x"
    assert float(rows["cost (USD)"][1]) <= float(rows["cost (USD)"][0])
    for label in ("queue wait p50 (min)", "queue wait p95 (min)", "reviewer wait p95 (min)"):
        assert all(float(cell) >= 0 for cell in rows[label][:2]), label
    saved = round(100 * (1 - float(policies) / float(always)))
    assert f"the instance-hours ({saved}% saved)" in out

    # Every policy acted in the policies-on run, and none in the baseline.
    baseline, ours = summary(out, "always on"), summary(out, "policies on")
    assert baseline["slept"] == baseline["reclaimed"] == baseline["expired"] == 0
    assert baseline.get("asleep", 0) == 0
    assert min(ours["slept"], ours["reclaimed"], ours["expired"]) > 0
    assert min(ours["asleep"], ours["woken"]) > 0  # a reviewer woke one up, and waited
    assert int(rows["reviewer waits"][1]) >= ours["asleep"]

    # Every step run, in one process: the very same numbers, more passes.
    slow = run(capsys, "--quiet-minutes", "0", "--jobs", "1")
    assert table(slow) == rows
    for name in ("always on", "policies on"):
        fast_line, slow_line = (summary_line(text, name) for text in (out, slow))
        assert fast_line.split("; ")[:3] == slow_line.split("; ")[:3]
        assert passes(slow_line) > passes(fast_line)
