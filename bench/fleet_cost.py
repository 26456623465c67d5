"""What the pool policies save in EC2 instance-hours, and what they cost in waiting, over a month.

Run from the repository root (nothing to set up; about two minutes on two cores):

    .venv/bin/python bench/fleet_cost.py
    .venv/bin/python bench/fleet_cost.py --servers 12 --days 30 --seed 3 --ttl-hours 72

It replays one month of pull-request activity twice through the real controller (reconcile
passes, pool policies, cost records), once per policy set, and prints them side by side:

* **always on** (the baseline): no policies, so a PR's server runs from assignment until the
  PR is merged, nights and weekends included;
* **policies on**: idle sleep (``--idle-minutes``, 120), reclaim of a sleeping server for a PR
  queued longer than ``--reclaim-minutes`` (30), office hours for every repository (Monday to
  Friday 08:00-19:00 in the model's time zone), and expiry when ``--ttl-hours`` is set (off by
  default: it parks PRs, and a reviewer cannot unpark one).

The month (``bench.fleet_model``, whose docstring gives every rate): PRs opened by a Poisson
process with weekday office-hours peaks (``--prs-per-day`` on a Monday, 14 by default; a
fraction of that at weekends) in ``--time-zone`` (Europe/Amsterdam, with the spring clock
change inside the default month), over ``--repositories`` repositories; log-normal lifetimes
around 20 h; 2.5 pushes and 3 review visits per PR on average plus a visit after most pushes;
merges, pushes and visits during working hours. Same ``--seed``, same month, in both runs.

How it is replayed (``bench.fleet_replay``): a throwaway SQLite controller DB per run, EC2 and
GitHub faked in process (``bench.fleet_ports``; an instance takes one pass to start or stop),
the clock moved ``--step-minutes`` (10) at a time with a reconcile pass at each step, the agent
played by reporting a deploy for every box EC2 shows running that needs one, and each visit
recorded as the visit link records it (a reviewer who finds the environment asleep presses
wake). Passes that cannot change anything (nothing happened, nothing under way, no policy
deadline or office-hours edge due) are skipped, at most ``--quiet-minutes`` (60) at a time;
``--quiet-minutes 0`` runs them all and prints the same numbers, slower. The two runs go in two
processes (``--jobs 1``: one after the other). Every pass is the whole pass, reporting to the
fake GitHub included: it reads every PR of the last week in a fixed number of queries, and is
about half of a pass's time here.

Printed per run, from what the controller recorded: instance-hours (the running spans the
passes wrote from observed EC2 states) and their price; queue wait per stay, p50 and p95
(``assigned_at - queued_at``; a PR queued while its repository's office hours are closed waits
for the opening by design, so the part of each wait that fell in working time is shown too);
and the reviewer's wait, p50 and p95, from a visit that found the environment not ready
(asleep, starting, queued, reclaimed) until its agent reported it ready: the price of the
saving. Waits are exact to the step: a wake takes one to two steps here (to the pass that
starts the instance, then one more for boot and deploy), where a pass every minute and a real
boot and deploy would take a few minutes. Ratios are policies on / always on.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fleet_model import Kind, Model, generate
from bench.fleet_replay import INSTANCE_TYPE, PRICE, Outcome, Policies, percentile, replay

BASELINE = "always on"
POLICIES = "policies on"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=20, help="pool size")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--start", type=date.fromisoformat, default=Model.start, help="a date")
    parser.add_argument("--time-zone", default=Model.time_zone)
    parser.add_argument("--repositories", type=int, default=Model.repositories)
    parser.add_argument("--prs-per-day", type=float, default=Model.prs_per_day)
    parser.add_argument("--seed", type=int, default=Model.seed)
    parser.add_argument("--step-minutes", type=int, default=10, help="simulated pass interval")
    parser.add_argument(
        "--quiet-minutes",
        type=int,
        default=60,
        help="longest skip over passes that cannot change anything; 0: run every step",
    )
    parser.add_argument("--idle-minutes", type=int, default=120)
    parser.add_argument("--reclaim-minutes", type=int, default=30)
    parser.add_argument("--ttl-hours", type=int, default=0, help="expiry; 0: off")
    parser.add_argument("--expiry-warning-hours", type=int, default=24)
    parser.add_argument("--no-office-hours", action="store_true")
    parser.add_argument("--jobs", type=int, default=2, choices=(1, 2), help="processes")
    args = parser.parse_args(argv)
    if args.servers < 1 or args.days < 1 or args.step_minutes < 1:
        parser.error("--servers, --days and --step-minutes must be at least 1")

    model = Model(
        start=args.start,
        days=args.days,
        time_zone=args.time_zone,
        repositories=args.repositories,
        prs_per_day=args.prs_per_day,
        seed=args.seed,
    )
    runs = [
        Policies(BASELINE),
        Policies.on(
            POLICIES,
            idle_stop_minutes=args.idle_minutes,
            reclaim_sleeping_after_minutes=args.reclaim_minutes,
            ttl_hours=args.ttl_hours,
            expiry_warning_hours=args.expiry_warning_hours,
            office_hours=not args.no_office_hours,
        ),
    ]
    step = timedelta(minutes=args.step_minutes)
    quiet = timedelta(minutes=args.quiet_minutes) if args.quiet_minutes else None
    activities = generate(model)
    kinds = [a.kind for a in activities]
    print(
        f"{args.days} days from {model.start} ({model.time_zone}), {model.repositories} "
        f"repositories: {kinds.count(Kind.OPEN)} PRs opened, {kinds.count(Kind.PUSH)} pushes, "
        f"{kinds.count(Kind.VISIT)} review visits, {kinds.count(Kind.MERGE)} merged (seed "
        f"{model.seed})"
    )
    print(
        f"pool of {args.servers} {INSTANCE_TYPE} at {PRICE} USD/h; a pass every "
        f"{args.step_minutes} simulated min; {describe(runs[1])}"
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pullre-fleet-") as directory:
        work = [(model, p, args.servers, step, quiet, Path(directory)) for p in runs]
        if args.jobs == 1:
            outcomes = [replay(*job) for job in work]
        else:
            # Spawned, not forked: a fork of a process with threads (a test runner's) can hang.
            spawn = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=args.jobs, mp_context=spawn) as pool:
                outcomes = list(pool.map(replay, *zip(*work, strict=True)))
    print(f"replayed in {time.perf_counter() - started:.1f}s\n")
    print_table(*outcomes)
    return 0


def describe(policies: Policies) -> str:
    pool, parts = policies.pool, []
    if pool is not None and pool.idle_stop_minutes:
        parts.append(f"idle sleep after {pool.idle_stop_minutes} min")
    if pool is not None:
        parts.append(f"reclaim after {pool.reclaim_sleeping_after_minutes} min queued")
    if policies.office_hours:
        parts.append("office hours Mon-Fri 08:00-19:00")
    if pool is not None and pool.ttl_hours:
        parts.append(
            f"expiry after {pool.ttl_hours} h (warned {pool.expiry_warning_hours} h before)"
        )
    return f"{policies.name}: " + (", ".join(parts) or "nothing")


def ratio(ours: float, baseline: float) -> str:
    if baseline == 0:
        return "-" if ours == 0 else "inf"
    return f"{ours / baseline:.2f}x"


def print_table(baseline: Outcome, ours: Outcome) -> None:
    def waits(label: str, field: str, fraction: float) -> tuple[str, float, float, str]:
        theirs, mine = getattr(baseline, field), getattr(ours, field)
        return (label, percentile(theirs, fraction), percentile(mine, fraction), ".0f")

    rows: list[tuple[str, float, float, str]] = [
        ("instance-hours", baseline.instance_hours, ours.instance_hours, ".1f"),
        ("  of which no PR's", baseline.unattributed_hours, ours.unattributed_hours, ".1f"),
        ("cost (USD)", float(baseline.cost), float(ours.cost), ".2f"),
        ("stays on the pool", baseline.stays, ours.stays, "d"),
        waits("queue wait p50 (min)", "queue_waits", 0.5),
        waits("queue wait p95 (min)", "queue_waits", 0.95),
        waits("  in working time p50", "working_queue_waits", 0.5),
        waits("  in working time p95", "working_queue_waits", 0.95),
        ("reviewer waits", len(baseline.reviewer_waits), len(ours.reviewer_waits), "d"),
        waits("reviewer wait p50 (min)", "reviewer_waits", 0.5),
        waits("reviewer wait p95 (min)", "reviewer_waits", 0.95),
    ]
    print(f"{'':<26}{BASELINE:>12}{POLICIES:>14}{'ratio':>10}")
    for label, theirs, mine, form in rows:
        print(
            f"{label:<26}{format(theirs, form):>12}{format(mine, form):>14}"
            f"{ratio(float(mine), float(theirs)):>10}"
        )
    print()
    for outcome in (baseline, ours):
        found = ", ".join(f"{k} {v}" for k, v in sorted(outcome.found.items()))
        events = outcome.events
        print(
            f"{outcome.policies.name}: visits found {found}; {outcome.unanswered} never "
            f"ready before merge; slept {events['sleeping']}, woken {events['waking']}, "
            f"reclaimed {events['reclaimed']}, expired {events['expired']}; "
            f"{outcome.passes} passes in {outcome.seconds:.1f}s"
        )
    saved = 1 - ours.instance_hours / baseline.instance_hours if baseline.instance_hours else 0
    print(
        f"\npolicies on / always on: {ratio(ours.instance_hours, baseline.instance_hours)} the "
        f"instance-hours ({saved:.0%} saved)"
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
