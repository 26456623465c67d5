"""How long the loop takes, webhook to EC2 to a serving commit, against the loop before issue 15.

Run from the repository root (nothing to set up, no MySQL; about four minutes by default):

    .venv/bin/python bench/loop_latency.py
    .venv/bin/python bench/loop_latency.py --prs 6 --pushes 2 --closes 1 --variants pullre

Each variant gets a fresh world (bench/loop_world.py): the real Flask app in cheroot with a
Nudger built from the real adapter factories and a webhook secret, GitHub writes paced at one
a second (``[github] write_interval = 1``), moto's EC2 server and the GitHub stand-in over real
HTTP, a SQLite controller DB, a safety-net pass every ``--cron-interval`` seconds (reporting
inline, as ``update_pull.py`` from cron does), and one real agent (``client.py``,
``allow_same_user``, ``app_user`` = you) per pool instance, kept running, serving the sandbox's
sample app on a port of its own (no build step, no database: start-up is the app's own share).
The pool has one server per PR of the first phase, so every opened PR can be started at once.

1. *PR opened → StartInstances*: ``--prs`` PRs opened ``--open-gap`` s apart, each announced
   by a signed ``pull_request`` ``opened`` webhook (GitHub's example payload, moved onto the
   stand-in's PR); measured to the moment the bench's own EC2 factory saw StartInstances
   return for the PR's server. Target: p95 ≤ 1 s.
2. *push → deploy starts*: ``--pushes`` pushes, one at a time, to the first PRs (once their
   first deploys serve), each with its ``synchronize`` webhook; measured to the agent's
   ``fetch`` step reported running (``deploy_steps.reported_at``). Target: ≤ 2 s.
3. *push → new sha serving*: to the app's ``/`` answering with the new sha (polled every
   50 ms), split into the app's own time (build and migrate steps, and from the ``start``
   step's ok to the ``health`` step's ok: the app's own start-up) and pullre's own (the rest).
   Target: pullre's own share ≤ 5 s.
4. *close → next queued PR's instance starting*: ``--closes`` more PRs are opened while the
   pool is full, so they queue; then as many of the first PRs are closed, one at a time, each
   with its ``closed`` webhook; measured to StartInstances of the freed server. Target: ≤ 2 s.
   The nudged pass stops the closed PR's instance, but a server is handed on only once a pass
   sees it stopped, and nothing nudges that pass: this measure includes the wait for the next
   safety-net pass (so it moves with ``--cron-interval``).

Variants (``--variants``, both by default, each printed with n, p50 and p95 in seconds, then
the ratio of the baseline's p95 to pullre's):

* ``pullre``: as shipped — reporting to GitHub in the Nudger's second worker under its own
  lease, agents in ``client.py --loop`` waiting on the controller (default 8 wait slots, so
  with more agents than slots some are told to retry after 5 s);
* ``before``, the baseline: the nudged pass reports to GitHub itself before the worker takes
  the next nudge (the pass gives its lease back first, as now; the worker is what waits), and
  agents run one ``client.py`` pass every ``--agent-cron-interval`` (10) s, as cron would
  (cron's one a minute is too slow to bench).

Quick runs (tests/test_bench_loop_latency.py): ``--write-interval 0`` unpaces GitHub writes,
``--agent-interval`` shortens the ``--loop`` agents' waits (so the controller stops at once),
``--deadline`` bounds the wait for any one measure.

Numbers are wall-clock on a shared machine (here, 2 cores shared with other work; 20 agents
and their apps compete with the controller): noisy, compare within one run. Nothing is
asserted on time; a measure that never happened within its deadline is counted as "missed".
"""

from __future__ import annotations

import argparse
import logging
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC
from functools import partial
from pathlib import Path
from typing import TypeVar

from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import loop_world
from bench.loop_world import World
from pullre.models import DeployStep
from pullre.sandbox.sample_repo import NAME, OWNER

MEASURES = {
    "opened": ("PR opened → StartInstances", "≤ 1 s"),
    "deploy": ("push → deploy starts", "≤ 2 s"),
    "serving": ("push → new sha serving", ""),
    "own": ("  of which pullre's own", "≤ 5 s"),
    "app": ("  of which the app's own", ""),
    "closed": ("close → next PR's start", "≤ 2 s"),
}
VARIANTS = ("pullre", "before")
POLL_S = 0.05
T = TypeVar("T")


@dataclass
class Results:
    samples: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in MEASURES})
    missed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MEASURES, 0))

    def add(self, measure: str, seconds: float | None) -> None:
        if seconds is None:
            self.missed[measure] += 1
        else:
            self.samples[measure].append(seconds)


def percentile(values: list[float], q: float) -> float:
    """Nearest rank: with few samples, p95 is the worst one, as a reader would expect."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def wait_for(probe: Callable[[], T | None], deadline_s: float) -> T | None:
    until = time.monotonic() + deadline_s
    while (found := probe()) is None and time.monotonic() < until:
        time.sleep(POLL_S)
    return found


def run_variant(variant: str, args: argparse.Namespace, later: ExitStack) -> Results:
    """One variant's measures; ``later`` removes what may outlive it (see loop_world.build)."""
    results = Results()
    home = Path(tempfile.mkdtemp(prefix=f"pullre-bench-loop-{variant}-"))
    later.callback(shutil.rmtree, home, ignore_errors=True)
    with ExitStack() as stack:
        world = loop_world.build(
            stack,
            home,
            later=later,
            agent_loop_interval=args.agent_interval,
            variant=variant,
            servers=args.prs,
            cron_interval=args.cron_interval,
            write_interval=args.write_interval,
            agent_cron_interval=args.agent_cron_interval,
        )
        print(f"{variant}: {args.prs} servers and agents up; opening PRs", flush=True)
        numbers = open_prs(world, args, results)
        print(f"{variant}: waiting for the first deploys to serve", flush=True)
        for number in numbers[: args.pushes]:
            sha = world.standin.pull(OWNER, NAME, number).head_sha
            if serving_since(world, number, sha, args.deadline) is None:
                print(f"{variant}: PR #{number} never served its first commit", flush=True)
        print(f"{variant}: pushing", flush=True)
        for k in range(args.pushes):
            push(world, numbers[k % len(numbers)], args, results)
        print(f"{variant}: closing", flush=True)
        close_prs(world, numbers, args, results)
    return results


def open_prs(world: World, args: argparse.Namespace, results: Results) -> list[int]:
    sent: dict[int, float] = {}
    began = time.monotonic()
    for k in range(args.prs):
        time.sleep(max(0.0, began + k * args.open_gap - time.monotonic()))
        number = world.repo.open_pull(f"Change {k + 1}", "alice")
        sent[number] = world.webhook("opened", number)
    for number, at in sent.items():
        results.add("opened", started_after(world, number, at, args.deadline))
    return list(sent)


def started_after(world: World, number: int, since: float, deadline: float) -> float | None:
    """Seconds from ``since`` to StartInstances of PR ``number``'s server; None if never."""

    def probe() -> float | None:
        instance = world.instance_of(number)
        started = world.starts.first_after(instance, since) if instance else None
        return None if started is None else started - since

    return wait_for(probe, deadline)


def serving_since(world: World, number: int, sha: str, deadline: float) -> float | None:
    """When PR ``number``'s box first answered with ``sha`` (wall clock); None if never."""

    def probe() -> float | None:
        instance = world.instance_of(number)
        agent = world.agents.get(instance or "")
        return time.time() if agent and f"commit {sha[:7]}" in agent.page() else None

    return wait_for(probe, deadline)


def push(world: World, number: int, args: argparse.Namespace, results: Results) -> None:
    sha = world.repo.push(number)
    sent = world.webhook("synchronize", number)
    serving = serving_since(world, number, sha, args.deadline)
    # The app answers a moment before the agent reports its health check ok.
    steps = wait_for(lambda: _with_health(step_times(world, sha)), 10.0) or step_times(world, sha)
    fetch = steps.get(("fetch", "running"))
    results.add("deploy", None if fetch is None else fetch - sent)
    if serving is None:
        for measure in ("serving", "own", "app"):
            results.add(measure, None)
        return
    total = serving - sent
    app = sum(
        steps[(step, "ok")] - steps[(step, "running")]
        for step in ("build", "migrate")
        if (step, "ok") in steps and (step, "running") in steps
    )
    if ("start", "ok") in steps and ("health", "ok") in steps:
        app += steps[("health", "ok")] - steps[("start", "ok")]
    results.add("serving", total)
    results.add("app", app)
    results.add("own", total - app)


def _with_health(steps: dict[tuple[str, str], float]) -> dict[tuple[str, str], float] | None:
    return steps if ("health", "ok") in steps else None


def step_times(world: World, sha: str) -> dict[tuple[str, str], float]:
    """(step, status) → when first reported for ``sha``, from the controller's deploy_steps."""
    with world.sessions() as session:
        rows = session.execute(
            select(DeployStep.step, DeployStep.status, DeployStep.reported_at)
            .where(DeployStep.head_sha == sha)
            .order_by(DeployStep.id)
        ).all()
    found: dict[tuple[str, str], float] = {}
    for step, status, at in rows:
        stamp = at if at.tzinfo else at.replace(tzinfo=UTC)
        found.setdefault((step, status.value), stamp.timestamp())
    return found


def close_prs(world: World, numbers: list[int], args: argparse.Namespace, results: Results) -> None:
    # The pool is full: these wait in the queue for a closed PR's server.
    for k in range(args.closes):
        queued = world.repo.open_pull(f"Queued {k + 1}", "bob")
        world.webhook("opened", queued)
        wait_for(lambda n=queued: world.queued(n) or None, args.deadline)
    for number in numbers[args.pushes : args.pushes + args.closes]:
        instance = world.instance_of(number)
        world.standin.close(OWNER, NAME, number)
        sent = world.webhook("closed", number)
        started = (
            wait_for(partial(world.starts.first_after, instance, sent), args.deadline)
            if instance
            else None
        )
        results.add("closed", None if started is None else started - sent)


def report(runs: dict[str, Results], args: argparse.Namespace) -> None:
    print(
        f"\n{args.prs} PRs opened {args.open_gap:g} s apart, {args.pushes} pushes, "
        f"{args.closes} closes; GitHub writes {args.write_interval:g} s apart; safety-net "
        f"pass every {args.cron_interval:g} s; baseline agents pass every "
        f"{args.agent_cron_interval:g} s; seconds"
    )
    header = f"{'measure':<28}{'target':>7}"
    for name in runs:
        header += f"{name + ' n':>11}{'p50':>7}{'p95':>7}"
    if len(runs) == 2:
        header += f"{'p95 ratio':>11}"
    print(header)
    for measure, (label, target) in MEASURES.items():
        line = f"{label:<28}{target:>7}"
        p95s = []
        for results in runs.values():
            values = results.samples[measure]
            missed = results.missed[measure]
            n = f"{len(values)}" + (f"+{missed}✗" if missed else "")
            if values:
                p95s.append(percentile(values, 0.95))
                line += f"{n:>11}{percentile(values, 0.5):>7.2f}{p95s[-1]:>7.2f}"
            else:
                line += f"{n:>11}{'-':>7}{'-':>7}"
        if len(p95s) == 2 and p95s[0] > 0:
            line += f"{p95s[1] / p95s[0]:>10.1f}x"
        print(line)
    print(
        "(n+k✗: k never happened within the deadline; ratio: baseline p95 / pullre p95; "
        "wall-clock on a shared machine, so noisy)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prs", type=int, default=20, help="PRs opened (and pool size)")
    parser.add_argument("--open-gap", type=float, default=2.0, help="seconds between PRs")
    parser.add_argument("--pushes", type=int, default=5)
    parser.add_argument("--closes", type=int, default=3)
    parser.add_argument("--cron-interval", type=float, default=10.0, help="safety-net pass")
    parser.add_argument(
        "--agent-cron-interval",
        type=float,
        default=loop_world.CRON_AGENT_INTERVAL_S,
        help="the baseline agents' seconds between passes",
    )
    parser.add_argument(
        "--agent-interval",
        type=float,
        default=60.0,
        help="pullre's agents' client.py --loop --interval (its default: 60)",
    )
    parser.add_argument(
        "--write-interval", type=float, default=1.0, help="[github] write_interval (pacing)"
    )
    parser.add_argument("--deadline", type=float, default=60.0, help="give up on one measure")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    if not set(variants) <= set(VARIANTS) or args.pushes + args.closes > args.prs:
        parser.error(f"--variants from {VARIANTS}; --pushes + --closes at most --prs")
    logging.basicConfig(level=logging.ERROR, format="%(asctime)s %(name)s: %(message)s")
    with ExitStack() as later:
        runs = {variant: run_variant(variant, args, later) for variant in variants}
    report(runs, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
