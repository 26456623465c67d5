"""Reconcile passes as real processes: two at once never double-assign, a killed one is finished.

Passes run as separate OS processes through ``update_pull.main`` — the function
``python update_pull.py --config <ini>`` runs — against the GitHub stand-in and moto (behind
the fault proxy, which tells the processes apart by the access key id each signs with), both
served from threads of this test on 127.0.0.1, and a real controller DB: a SQLite file, or a
MariaDB database.

A Python start-up that imports SQLAlchemy, Alembic, boto3 and PyGithub costs about a CPU
second, so 50 rounds of two fresh ``python update_pull.py`` processes on two databases would
take minutes on two cores. Most rounds therefore fork both passes from a launcher process that
has done those imports once (each child is still its own process with its own connections,
clients and lease holder id, and runs the same ``main``, only without the adapter's one-second
pause between GitHub writes); every ``EXEC_EVERY``-th round launches
``python update_pull.py --config <ini>`` itself, so the real command line is covered.

Rounds alternate between two kinds of contention. In a *held* round the proxy parks the first
DescribeInstances until one process has exited: the pass that got the lease is stopped mid-way
holding it, so the other must skip. In a *free* round both run unhindered and race for the
lease; then one skips, or the second waits until the first is done, which the proxy's request
log shows as one process's EC2 calls all coming before the other's.
"""

from __future__ import annotations

import itertools
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from pullre import migrate
from pullre.db import make_engine, make_session_factory
from pullre.github.adapter import PyGithubAdapter
from pullre.github.standin.server import GitHubStandIn
from pullre.models import (
    ACTIVE_ENVIRONMENT_STATUSES,
    Environment,
    EnvironmentStatus,
    Event,
    Lease,
    PullRequest,
    PullRequestState,
    Server,
)
from pullre.reconcile.run import LEASE_NAME
from tests.ec2_fixtures import Ec2FaultProxy, FaultyEc2
from tests.github_fixtures import GITHUB_TOKEN
from tests.reconcile_fixtures import OWNER, World

REPO_ROOT = Path(__file__).resolve().parent.parent
#: The issue asks for 50 rounds; at ~0.5 s per round on two cores that is well inside the
#: two-minute budget for both databases together.
ROUNDS = 50
#: Every this many rounds the pair is two fresh ``python update_pull.py`` processes (the first
#: round only: a fresh interpreter spends over a second importing what a pass needs).
EXEC_EVERY = ROUNDS
POOL_SIZE = 5
REPOSITORIES = ("shop", "blog")
#: Generous: a loaded two-core machine may be slow, but a pass over a handful of PRs that
#: takes this long is stuck, not slow.
DEADLINE = 60.0
SKIPPED = "skipped: the lease is held by"

# The launcher imports everything a pass needs once, then forks a child per pass. Nothing
# opens a socket or a database before the fork, so children share no connection.
LAUNCHER = r"""
import os, signal, sys, time
sys.path.insert(0, os.environ["PULLRE_REPO_ROOT"])
import update_pull

def child(config, key, log):
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.environ["AWS_ACCESS_KEY_ID"] = key
    try:
        code = update_pull.main(["--config", config])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

def fork(config, key, log):
    pid = os.fork()
    if pid == 0:
        child(config, key, log)
    return pid

def report(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()

for command in sys.stdin:
    words = command.split()
    if words[0] == "pair":  # pair CONFIG KEY LOG KEY LOG
        config = words[1]
        pids = {fork(config, words[i], words[i + 1]): words[i] for i in (2, 4)}
        while pids:
            pid, status = os.wait()
            report(f"exit {pids.pop(pid)} {os.waitstatus_to_exitcode(status)}")
    elif words[0] == "kill":  # kill CONFIG KEY LOG DELAY_MS
        started = time.monotonic()
        pid = fork(words[1], words[2], words[3])
        until = started + int(words[4]) / 1000
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done or time.monotonic() >= until:
                break
            time.sleep(0.001)
        if not done:
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
        took = time.monotonic() - started
        report(f"exit {words[2]} {os.waitstatus_to_exitcode(status)} {took:.3f}")
    report("done")
"""


class Launcher:
    """The forking launcher: commands in on stdin, one line per child exit out on stdout."""

    def __init__(self, directory: Path) -> None:
        script = directory / "launcher.py"
        script.write_text(LAUNCHER)
        self.process = subprocess.Popen(
            [sys.executable, str(script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PULLRE_REPO_ROOT": str(REPO_ROOT)},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.strip())
        self.lines.put("eof")

    def send(self, *words: object) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(" ".join(map(str, words)) + "\n")
        self.process.stdin.flush()

    def next_line(self, deadline: float) -> str | None:
        try:
            line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return None
        assert line != "eof", "the launcher died"
        return line

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    started = Launcher(tmp_path)
    yield started
    started.close()


def write_config(directory: Path, world: World, proxy: Ec2FaultProxy, database_url: str) -> Path:
    path = directory / "app.ini"
    path.write_text(
        "[controller]\n"
        f"database_url = {database_url}\n"
        "[github]\n"
        f"api_url = {world.standin.url}\n"
        f"token = {GITHUB_TOKEN}\n"
        # The stand-in needs no pause between writes; GitHub itself gets the default second.
        "write_interval = 0\n"
        "[aws]\n"
        "region = us-east-1\n"
        f"endpoint_url = {proxy.endpoint_url}\n"
        "[pool]\n"
        "lease_seconds = 120\n"
    )
    return path


# --- what must hold whatever the interleaving ----------------------------------------------------


def held_twice(world: World) -> list[int]:
    """Servers held by more than one active environment (the answer must be none)."""
    with world.sessions() as session:
        return list(
            session.scalars(
                select(Environment.server_id)
                .where(
                    Environment.server_id.is_not(None),
                    Environment.status.in_(ACTIVE_ENVIRONMENT_STATUSES),
                )
                .group_by(Environment.server_id)
                .having(func.count() > 1)
            )
        )


def event_counts(world: World, kind: str) -> Counter[str]:
    """Instance id → number of events of ``kind`` naming its server."""
    with world.sessions() as session:
        rows = session.scalars(
            select(Server.instance_id)
            .join(Event, Event.server_id == Server.id)
            .where(Event.kind == kind)
        ).all()
    return Counter(rows)


def double_assignments(world: World) -> list[str]:
    """Replays the event log: a server assigned again before it was released is a bug.

    The unique constraint on ``environments.server_id`` only shows the present; the log shows
    every moment in between.
    """
    holder: dict[str, int | None] = {}
    problems = []
    with world.sessions() as session:
        rows = session.execute(
            select(Event.kind, Server.instance_id, Event.pull_request_id, Event.message)
            .join(Server, Event.server_id == Server.id)
            .where(Event.kind.in_(["assigned", "released"]))
            .order_by(Event.id)
        ).all()
    for kind, instance, pull_request_id, message in rows:
        if kind == "assigned":
            if holder.get(instance) is not None:
                problems.append(f"{instance}: {message} while PR id {holder[instance]} holds it")
            holder[instance] = pull_request_id
        else:
            holder[instance] = None
    return problems


def wanted_pulls(world: World) -> set[int]:
    with world.sessions() as session:
        return set(
            session.scalars(
                select(PullRequest.id).where(PullRequest.state == PullRequestState.OPEN)
            )
        )


def active_by_pull(world: World) -> Counter[int]:
    """PR id → active environments; one still giving its server back counts only when it
    belongs to a PR that is wanted again (it must then be the only one)."""
    wanted = wanted_pulls(world)
    with world.sessions() as session:
        rows = session.execute(
            select(Environment.pull_request_id, Environment.status).where(
                Environment.status.in_(ACTIVE_ENVIRONMENT_STATUSES)
            )
        ).all()
    return Counter(
        pull_id
        for pull_id, status in rows
        if pull_id in wanted or status is not EnvironmentStatus.RELEASING
    )


def orphans(world: World) -> list[str]:
    """Pool instances EC2 runs that no active environment holds."""
    with world.sessions() as session:
        held = set(
            session.scalars(
                select(Server.instance_id)
                .join(Environment, Environment.server_id == Server.id)
                .where(Environment.status.in_(ACTIVE_ENVIRONMENT_STATUSES))
            )
        )
    return [i for i, state in world.states().items() if state == "running" and i not in held]


def check_starts(world: World, proxy: Ec2FaultProxy) -> None:
    """Every StartInstances that reached EC2 is one ``started`` event, for one assignment."""
    starts = proxy.forwarded("StartInstances")
    assert starts == event_counts(world, "started")
    assigned = event_counts(world, "assigned")
    assert all(count <= assigned[instance] for instance, count in starts.items()), (
        starts,
        assigned,
    )


# --- PR churn between rounds ---------------------------------------------------------------------


def churn(world: World, rng: random.Random, open_pulls: list[tuple[str, int]]) -> None:
    """Open some PRs, close or merge some, push to one: what a busy team does between passes."""
    for _ in range(rng.choice([0, 1, 1, 2])):
        name = rng.choice(REPOSITORIES)
        open_pulls.append((name, world.standin.open_pull(OWNER, name)))
    for _ in range(rng.choice([0, 0, 1, 2])):
        if len(open_pulls) <= 2:
            break
        name, number = open_pulls.pop(rng.randrange(len(open_pulls)))
        (world.standin.merge if rng.random() < 0.5 else world.standin.close)(OWNER, name, number)
    if open_pulls and rng.random() < 0.3:
        name, number = rng.choice(open_pulls)
        world.standin.push(OWNER, name, number)


# --- two passes at once -------------------------------------------------------------------------


@dataclass
class PairResult:
    skipped: list[str]
    exit_codes: dict[str, int]
    keys_seen: list[str]  # access keys of this round's EC2 requests, in arrival order


def run_pair(
    launcher: Launcher,
    proxy: Ec2FaultProxy,
    config: Path,
    logs: Path,
    round_number: int,
    *,
    held: bool,
    exec_processes: bool,
) -> PairResult:
    keys = (f"pass-{round_number}-a", f"pass-{round_number}-b")
    paths = {key: logs / f"{key}.log" for key in keys}
    first_request = len(proxy.requests)
    if held:
        proxy.hold("DescribeInstances")
    exits: dict[str, int] = {}
    deadline = time.monotonic() + DEADLINE
    try:
        if exec_processes:
            exits = _run_exec_pair(proxy, config, paths, deadline, held)
        else:
            launcher.send("pair", config, keys[0], paths[keys[0]], keys[1], paths[keys[1]])
            while True:
                line = launcher.next_line(deadline if not held else time.monotonic() + 0.05)
                if line is None:
                    if held:
                        _check_not_both_held(proxy)
                        assert time.monotonic() < deadline, "a pass never finished"
                    continue
                if line == "done":
                    break
                _, key, code = line.split()
                exits[key] = int(code)
                proxy.release_hold()  # one is out: let the one parked mid-pass go on
    finally:
        proxy.release_hold()
    texts = {key: path.read_text() for key, path in paths.items()}
    return PairResult(
        skipped=[key for key, text in texts.items() if SKIPPED in text],
        exit_codes=exits,
        keys_seen=[r.access_key for r in proxy.requests[first_request:]],
    )


def _check_not_both_held(proxy: Ec2FaultProxy) -> None:
    parked = set(proxy.held())
    assert len(parked) < 2, f"two passes observed the pool at once: {parked}"


def _run_exec_pair(
    proxy: Ec2FaultProxy, config: Path, paths: dict[str, Path], deadline: float, held: bool
) -> dict[str, int]:
    processes = {}
    for key, path in paths.items():
        with path.open("w") as log:
            processes[key] = subprocess.Popen(
                [sys.executable, "update_pull.py", "--config", str(config)],
                cwd=REPO_ROOT,
                env={**os.environ, "AWS_ACCESS_KEY_ID": key},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
    exits: dict[str, int] = {}
    try:
        while len(exits) < len(processes):
            assert time.monotonic() < deadline, "a pass never finished"
            if held:
                _check_not_both_held(proxy)
            for key, process in processes.items():
                if key not in exits and process.poll() is not None:
                    exits[key] = process.returncode
                    proxy.release_hold()
            time.sleep(0.02)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    return exits


def one_after_the_other(keys_seen: list[str]) -> bool:
    """True when the requests of one process all came before those of the other."""
    changes = sum(1 for a, b in itertools.pairwise(keys_seen) if a != b)
    return changes <= 1


def build_world(
    tmp_path: Path,
    database_url: str,
    standin: GitHubStandIn,
    github: PyGithubAdapter,
    faulty: FaultyEc2,
) -> World:
    migrate.upgrade(database_url)
    engine = make_engine(database_url)
    world = World(engine, make_session_factory(engine), standin, github, faulty.sandbox)
    for name in REPOSITORIES:
        world.add_repository(OWNER, name)
    world.add_servers(POOL_SIZE)
    return world


def concurrent_rounds(world: World, faulty: FaultyEc2, launcher: Launcher, tmp_path: Path) -> None:
    proxy = faulty.proxy
    config = write_config(tmp_path, world, proxy, str(world.engine.url.render_as_string(False)))
    logs = tmp_path / "logs"
    logs.mkdir()
    rng = random.Random(20240611)
    open_pulls: list[tuple[str, int]] = []
    held_skips = free_skips = free_waits = 0
    for round_number in range(ROUNDS):
        churn(world, rng, open_pulls)
        held = round_number % 2 == 0
        result = run_pair(
            launcher,
            proxy,
            config,
            logs,
            round_number,
            held=held,
            exec_processes=round_number % EXEC_EVERY == 0,
        )
        context = f"round {round_number}: {result}"
        assert set(result.exit_codes.values()) == {0}, context
        if held:
            # The pass holding the lease was parked mid-way until the other had finished.
            assert len(result.skipped) == 1, context
            held_skips += 1
        elif result.skipped:
            assert len(result.skipped) == 1, context
            free_skips += 1
        else:
            assert one_after_the_other(result.keys_seen), context
            free_waits += 1
        if result.skipped:  # a skipped pass never talked to EC2
            assert result.skipped[0] not in result.keys_seen, context
        assert held_twice(world) == [], context
        check_starts(world, proxy)

    assert held_skips == ROUNDS // 2
    assert free_skips + free_waits == ROUNDS - ROUNDS // 2
    assert double_assignments(world) == []
    # Nothing is left half done: two more passes settle the pool.
    world.run(faulty.adapter)
    world.run(faulty.adapter)
    check_starts(world, proxy)
    wanted = wanted_pulls(world)
    assert set(active_by_pull(world)) == wanted
    assert set(active_by_pull(world).values()) <= {1}
    assert len([s for s in world.states().values() if s == "running"]) == min(
        len(wanted), POOL_SIZE
    )
    assert orphans(world) == []


def test_two_passes_at_once_on_sqlite(
    tmp_path: Path,
    github_standin: GitHubStandIn,
    github: PyGithubAdapter,
    faulty_ec2: FaultyEc2,
    launcher: Launcher,
) -> None:
    url = f"sqlite:///{tmp_path / 'controller.db'}"
    world = build_world(tmp_path, url, github_standin, github, faulty_ec2)
    try:
        concurrent_rounds(world, faulty_ec2, launcher, tmp_path)
    finally:
        world.engine.dispose()


def test_two_passes_at_once_on_mariadb(
    tmp_path: Path,
    mysql_database_url: str,
    github_standin: GitHubStandIn,
    github: PyGithubAdapter,
    faulty_ec2: FaultyEc2,
    launcher: Launcher,
) -> None:
    url = mysql_database_url
    if url.startswith("mysql://"):
        url = "mysql+pymysql://" + url.removeprefix("mysql://")
    world = build_world(tmp_path, url, github_standin, github, faulty_ec2)
    try:
        concurrent_rounds(world, faulty_ec2, launcher, tmp_path)
    finally:
        world.engine.dispose()


# --- a pass killed anywhere --------------------------------------------------------------------

KILL_ROUNDS = 12
MAX_KILL_ROUNDS = 30


def test_a_pass_killed_at_any_point_is_finished_by_the_next(
    world: World, faulty_ec2: FaultyEc2, launcher: Launcher, tmp_path: Path
) -> None:
    proxy = faulty_ec2.proxy
    for name in REPOSITORIES:
        world.add_repository(OWNER, name)
    world.add_servers(8)
    config = write_config(tmp_path, world, proxy, str(world.engine.url))
    logs = tmp_path / "logs"
    logs.mkdir()
    rng = random.Random(7)
    open_pulls = [(name, world.standin.open_pull(OWNER, name)) for name in REPOSITORIES * 5]

    # One pass left alone shows how long a whole pass takes from the fork.
    launcher.send("kill", config, "measure", logs / "measure.log", 20_000)
    line = launcher.next_line(time.monotonic() + DEADLINE)
    assert line is not None
    assert launcher.next_line(time.monotonic() + DEADLINE) == "done"
    _, _, measured_code, took = line.split()
    assert measured_code == "0"
    whole_pass_ms = int(float(took) * 1000)

    killed_after_ec2 = 0
    round_number = 0
    # A loaded machine stretches some phases of a pass more than others, so a fixed number of
    # random kills may land in EC2 work too seldom to mean something: go on until enough did.
    while round_number < KILL_ROUNDS or (
        killed_after_ec2 < KILL_ROUNDS // 4 and round_number < MAX_KILL_ROUNDS
    ):
        round_number += 1
        # Heavy churn so a pass has much to do: several stops, releases, assignments, starts.
        for _ in range(3):
            if len(open_pulls) > 4:
                name, number = open_pulls.pop(rng.randrange(len(open_pulls)))
                world.standin.close(OWNER, name, number)
        for _ in range(rng.randint(2, 4)):
            name = rng.choice(REPOSITORIES)
            open_pulls.append((name, world.standin.open_pull(OWNER, name)))

        key = f"killed-{round_number}"
        before = len(proxy.requests)
        delay = rng.randint(0, whole_pass_ms)
        launcher.send("kill", config, key, logs / f"{key}.log", delay)
        line = launcher.next_line(time.monotonic() + DEADLINE)
        assert line is not None
        assert launcher.next_line(time.monotonic() + DEADLINE) == "done"
        code = int(line.split()[2])
        if code == -signal.SIGKILL and any(r.access_key == key for r in proxy.requests[before:]):
            killed_after_ec2 += 1

        # The killed pass's lease runs out (fast-forwarded here), then a fresh pass runs.
        with world.engine.begin() as connection:
            connection.execute(
                update(Lease)
                .where(Lease.name == LEASE_NAME, Lease.holder.is_not(None))
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        report = world.run(faulty_ec2.adapter)
        context = f"round {round_number}, killed after {delay} ms (exit {code})"
        assert report.skipped is False, context
        assert report.errors == [], context

        wanted = wanted_pulls(world)
        active = active_by_pull(world)
        assert set(active) == wanted, context
        assert set(active.values()) <= {1}, context
        assert held_twice(world) == [], context
        assert orphans(world) == [], context
        starts = proxy.forwarded("StartInstances")
        assigned = event_counts(world, "assigned")
        assert all(n <= assigned[i] for i, n in starts.items()), (context, starts, assigned)

    # Enough kills landed in the middle of EC2 work to mean something.
    assert killed_after_ec2 >= KILL_ROUNDS // 4, killed_after_ec2
    assert double_assignments(world) == []
    world.run(faulty_ec2.adapter)
    wanted = wanted_pulls(world)
    running = [i for i, state in world.states().items() if state == "running"]
    assert len(running) == min(len(wanted), len(world.servers))
    assert orphans(world) == []
