"""What a reconcile pass costs in GitHub requests, EC2 calls and time, against a naive full sync.

Run from the repository root (nothing to set up; about a minute):

    .venv/bin/python bench/reconcile.py
    .venv/bin/python bench/reconcile.py --repositories 20 --pulls 50 --servers 300

The world: moto's EC2 server and the GitHub stand-in, both in this process on 127.0.0.1 and
reached over real HTTP through boto3 and PyGithub; a SQLite controller DB in a temp dir. 20
repositories with 50 open PRs each and a pool of 300 servers, so 300 PRs hold servers and 700
wait in the queue.

Measured, after a first pass has assigned and started the pool:

* an *idle pass*: nothing changed on GitHub or EC2;
* a *changed PR*: one PR gets a push (one repository's listing changes);
* a *closed PR*: one PR is closed — its server is stopped, and on the next pass released and
  handed to the head of the queue (two passes, reported together).

The baseline is what a naive implementation does on every pass whatever changed, with the same
adapters: list every repository's open PRs without a validator (every page, full price), GET
each open PR once more for its details, and one DescribeInstances per server. Its cost does not
depend on what changed, so it is measured once. Ratios are baseline / pullre; "rate-limited"
counts the GitHub requests that spend rate limit (a 304 does not), "writes" the POST/PATCH
requests of reporting to GitHub (deployments, the PR comment, statuses), which the naive
baseline does not do at all.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import boto3
from github import Auth

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from moto.ec2.models.amis import AMIS
from moto.server import ThreadedMotoServer

from pullre import migrate
from pullre.config import AwsSettings
from pullre.db import make_engine, make_session_factory
from pullre.ec2.boto3_adapter import Boto3Ec2, make_client
from pullre.github.adapter import PyGithubAdapter
from pullre.github.standin.server import GitHubStandIn
from pullre.github.transport import GitHubStats
from pullre.models import Repository, Server
from pullre.reconcile.run import PassReport, run_pass

TOKEN = "bench-token"
OWNER = "acme"
REGION = "us-east-1"
IMAGE_ID = next((a["ami_id"] for a in AMIS if "ubuntu" in a.get("name", "")), AMIS[0]["ami_id"])


@dataclass
class Cost:
    github: int = 0
    github_rate_limited: int = 0
    github_writes: int = 0
    ec2: int = 0
    seconds: float = 0.0

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.github + other.github,
            self.github_rate_limited + other.github_rate_limited,
            self.github_writes + other.github_writes,
            self.ec2 + other.ec2,
            self.seconds + other.seconds,
        )


class Bench:
    def __init__(self, standin: GitHubStandIn, moto_url: str, directory: Path) -> None:
        self.standin = standin
        session = boto3.session.Session()
        self.ec2 = Boto3Ec2(
            make_client(AwsSettings(region=REGION, endpoint_url=moto_url), session=session)
        )
        self.raw = make_client(AwsSettings(region=REGION, endpoint_url=moto_url), session=session)
        self.github = PyGithubAdapter(
            Auth.Token(TOKEN), base_url=standin.url, stats=GitHubStats(), timeout=30,
            retries=2, backoff_factor=0, seconds_between_writes=0,
        )  # fmt: skip
        url = f"sqlite:///{directory / 'controller.db'}"
        migrate.upgrade(url)
        self.engine = make_engine(url)
        self.sessions = make_session_factory(self.engine)
        self.repositories: list[str] = []
        self.instances: list[str] = []

    def populate(self, repositories: int, pulls: int, servers: int) -> None:
        with self.sessions() as session:
            for index in range(repositories):
                name = f"service-{index:02d}"
                self.standin.create_repo(OWNER, name)
                for _ in range(pulls):
                    self.standin.open_pull(OWNER, name)
                session.add(Repository(owner=OWNER, name=name))
                self.repositories.append(name)
            while len(self.instances) < servers:
                batch = min(50, servers - len(self.instances))
                reservation = self.raw.run_instances(
                    ImageId=IMAGE_ID, MinCount=batch, MaxCount=batch, InstanceType="t3.micro"
                )
                ids = [i["InstanceId"] for i in reservation["Instances"]]
                self.raw.stop_instances(InstanceIds=ids)
                self.instances.extend(ids)
            for number, instance_id in enumerate(self.instances, start=1):
                session.add(Server(instance_id=instance_id, name=f"stage-{number:03d}"))
            session.commit()

    @contextmanager
    def measured(self) -> Iterator[Cost]:
        self.standin.clear_requests()
        self.ec2.reset_counts()
        cost = Cost()
        started = time.perf_counter()
        yield cost
        cost.seconds = time.perf_counter() - started
        requests = list(self.standin.requests)
        cost.github = len(requests)
        cost.github_rate_limited = sum(1 for r in requests if r.status != 304)
        cost.github_writes = sum(1 for r in requests if r.method != "GET")
        cost.ec2 = sum(self.ec2.calls.values())

    def reconcile(self) -> tuple[Cost, PassReport]:
        with self.measured() as cost:
            report = run_pass(
                self.engine, self.github, self.ec2, include_drafts=False,
                lease_ttl=timedelta(minutes=5),
            )  # fmt: skip
        assert not report.skipped, "another pass holds the lease"
        assert not report.errors, report.errors[:5]
        return cost, report

    def naive_pass(self) -> Cost:
        """A full sync with no validator, a GET per PR and a DescribeInstances per server."""
        with self.measured() as cost:
            for name in self.repositories:
                listing = self.github.list_open_pulls(OWNER, name, None)
                self.github.etags.clear()  # a naive client keeps no validators
                assert not isinstance(listing, type(None))
                for pull in getattr(listing, "pulls", ()):
                    self.github.get_pull(OWNER, name, pull.number)
            for instance_id in self.instances:
                self.ec2.describe([instance_id])
        return cost


def median_cost(runs: list[Cost]) -> Cost:
    return Cost(
        github=int(statistics.median(c.github for c in runs)),
        github_rate_limited=int(statistics.median(c.github_rate_limited for c in runs)),
        github_writes=int(statistics.median(c.github_writes for c in runs)),
        ec2=int(statistics.median(c.ec2 for c in runs)),
        seconds=statistics.median(c.seconds for c in runs),
    )


def repeat(times: int, step: Callable[[], Cost]) -> Cost:
    return median_cost([step() for _ in range(times)])


def ratio(baseline: float, ours: float) -> str:
    return "inf" if ours == 0 else f"{baseline / ours:.0f}x"


def row(label: str, ours: Cost, naive: Cost) -> str:
    return (
        f"{label:<26}{ours.github:>6} ({ours.github_rate_limited:>4}) "
        f"[{ours.github_writes:>4}] {ours.ec2:>6} "
        f"{ours.seconds:>8.2f}s   │ {ratio(naive.github, ours.github):>20} "
        f"{ratio(naive.github_rate_limited, ours.github_rate_limited):>9} "
        f"{ratio(naive.ec2, ours.ec2):>4} {ratio(naive.seconds, ours.seconds):>5}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repositories", type=int, default=20)
    parser.add_argument("--pulls", type=int, default=50, help="open PRs per repository")
    parser.add_argument("--servers", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    args = parser.parse_args()

    for key, value in {
        "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true", "AWS_DEFAULT_REGION": REGION,
    }.items():  # fmt: skip
        os.environ[key] = value  # fakes: this bench never reaches a real account
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2"):
        os.environ.pop(name, None)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    try:
        with GitHubStandIn(tokens={TOKEN: "pullre-bot"}, rate_limit=10**9) as standin, \
                tempfile.TemporaryDirectory() as directory:  # fmt: skip
            bench = Bench(standin, f"http://{host}:{port}", Path(directory))
            started = time.perf_counter()
            bench.populate(args.repositories, args.pulls, args.servers)
            print(
                f"{args.repositories} repositories x {args.pulls} open PRs, {args.servers} "
                f"servers (set up in {time.perf_counter() - started:.1f}s)"
            )
            first, report = bench.reconcile()
            print(
                f"first pass: {len(report.assigned)} assigned, {len(report.started)} started, "
                f"{first.github} GitHub requests, {first.ec2} EC2 calls, {first.seconds:.1f}s\n"
            )
            # Settle: the first pass's reports to GitHub may run past their time budget.
            for _ in range(20):
                settle, _ = bench.reconcile()
                if settle.github_writes == 0:
                    break

            idle = repeat(args.repeat, lambda: bench.reconcile()[0])

            def push_one() -> Cost:
                standin.push(OWNER, bench.repositories[0], 1)
                return bench.reconcile()[0]

            pushed = repeat(args.repeat, push_one)

            closed_numbers = iter(range(1, args.pulls + 1))

            def close_one() -> Cost:
                # PRs 1.. of the first repository are the oldest, so they hold servers.
                standin.close(OWNER, bench.repositories[0], next(closed_numbers))
                stop, stop_report = bench.reconcile()
                handover, handover_report = bench.reconcile()
                assert len(stop_report.stopped) == 1, stop_report
                assert len(handover_report.released) == 1, handover_report
                assert len(handover_report.started) == 1, handover_report
                return stop + handover

            closed = repeat(args.repeat, close_one)
            naive = repeat(args.repeat, bench.naive_pass)
            bench.engine.dispose()
            bench.github.close()
    finally:
        moto.stop()

    header = (
        "                          GitHub (rate-ltd) [writes]  EC2     time   "
        "│ naive/pullre: GitHub  rate-ltd  EC2  time"
    )
    print(header)
    print("─" * len(header))
    print(row("idle pass", idle, naive))
    print(row("changed PR (push)", pushed, naive))
    print(row("closed PR (2 passes)", closed, naive + naive))
    print(
        f"{'naive full sync, 1 pass':<26}{naive.github:>6} ({naive.github_rate_limited:>4}) "
        f"[{naive.github_writes:>4}] {naive.ec2:>6} {naive.seconds:>8.2f}s"
    )
    print(f"\nmedian of {args.repeat} runs each; the closed PR is compared with two naive passes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
