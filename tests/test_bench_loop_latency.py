"""bench/loop_latency.py on a tiny run, so the benchmark cannot rot unnoticed.

Two PRs, one push, one close, both variants, with short intervals and unpaced GitHub writes so
it ends quickly: every measure must have happened (the webhooks reached the pass, the agents
deployed the push and reported their steps, the closed PR's server went to the queued one), and
the app's own share must have been found in the step reports. No time is asserted.
"""

from __future__ import annotations

import pytest

from bench import loop_latency

TINY = [
    "--prs", "2", "--pushes", "1", "--closes", "1", "--open-gap", "0.5",
    "--cron-interval", "1", "--agent-cron-interval", "1", "--agent-interval", "1",
    "--write-interval", "0", "--deadline", "30",
]  # fmt: skip


def test_every_measure_of_both_variants_happens(capsys: pytest.CaptureFixture[str]) -> None:
    assert loop_latency.main(TINY) == 0
    out = capsys.readouterr().out

    labels = [text.strip() for text, _ in loop_latency.MEASURES.values()]
    # Columns: label (28), target (7), then n, p50, p95 per variant and the p95 ratio.
    rows = {
        line[:28].strip(): line[35:].split()
        for line in out.splitlines()
        if line[:28].strip() in labels
    }
    assert list(rows) == labels
    for label, cells in rows.items():
        assert len(cells) == 7, (label, cells)
        pullre_n, before_n = cells[0], cells[3]
        assert "✗" not in pullre_n + before_n, f"{label}: a measure never happened"
        assert int(pullre_n) > 0
        assert int(before_n) > 0
    app_p50 = rows["of which the app's own"][1]
    assert float(app_p50) > 0  # the app's own start-up, found in the agent's step reports
