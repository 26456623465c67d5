"""What the web app costs under concurrent load: dashboard and JSON API beside a /healthz floor.

Run from the repository root (nothing to set up; about 2 minutes):

    .venv/bin/python bench/web.py
    .venv/bin/python bench/web.py --pulls 1000 --servers 300 --requests 300 --concurrency 8

The world: a migrated SQLite controller DB in a temp dir with 20 repositories, 1000 open PRs
(300 holding servers, 700 queued), 300 pool servers, a day of per-minute pass history and a few
thousand events; an admin account and an API token. The app runs in cheroot (the HTTP server
CherryPy uses, as app.py does) in a thread of this process, on 127.0.0.1.

A second process (this file with ``--load``) logs in through the login form like a browser,
then fires requests from a pool of threads (stdlib ``urllib``; bounded by ``--requests`` and
``--seconds`` per endpoint; loopback only) at:

* ``/healthz`` — the baseline: one ``SELECT 1`` through the same server, threads and session
  set-up, so it is the floor every page pays;
* ``/`` — the dashboard, logged in with a session cookie;
* ``/api/v1/pulls`` — the JSON listing (default page), with a bearer API token.

The load runs four times against the same app: quiet; with a writer (a third process holding
SQLite's write lock the way a reconcile pass does: a write transaction through pullre's write
sessions every 50 ms, updating every environment and holding the lock 20 ms); with the same
writer and the page cache off (``pullre.web.page_cache``: the dashboard and the PR list are
otherwise computed once per commit, which this writer makes 14 times a second); and with the
cache off while every request reads through a write session (BEGIN IMMEDIATE), which is how
pullre read before deferred read sessions and the cache: the named baseline for "pages stay fast
while passes write". The app's start-up heap is frozen out of the garbage collector's walks, as
app.py does.

Printed per endpoint and run: p50/p95 latency, requests per second, and ratios to the healthz
floor; then p95 with the writer, each baseline over this. Then the SQL statements
one dashboard render and one API page issue with the cache off (counted with a SQLAlchemy
``before_cursor_execute`` listener on a direct, in-process render) beside the named baseline for
query counts: a naive N+1 listing of the same PRs through lazy-loaded relationships.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cheroot import wsgi
from flask import Flask
from sqlalchemy import Engine, event, select, update
from sqlalchemy.orm import Session, sessionmaker

from pullre import migrate
from pullre.accounts import api_tokens
from pullre.accounts import user_accounts as accounts
from pullre.config import WEB_THREADS, Settings, load_settings
from pullre.db import SQLITE_BUSY_TIMEOUT_MS, make_engine, make_session_factory
from pullre.models import (
    Environment,
    EnvironmentStatus,
    Event,
    PassRun,
    PullRequest,
    PullRequestState,
    Repository,
    Role,
    Server,
    utcnow,
)
from pullre.startup import freeze_startup_heap
from pullre.web import create_app, page_cache
from pullre.web.db_session import READ_FACTORY_KEY, WRITE_FACTORY_KEY

USERNAME, PASSWORD = "bench-admin", "bench-password-123"
#: The writer's rhythm: how long it holds the write lock, and its pause between transactions.
WRITER_HOLD_S = 0.02
WRITER_PAUSE_S = 0.05
REPOSITORIES = 20
#: The runs with the writer: pullre as it is, its page cache off, and how it read before.
THIS = "writer"
CACHE_OFF = "writer, page cache off"
BEFORE = "writer, page cache off, immediate reads (before)"
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


# --- the world -------------------------------------------------------------------------------


def seed(sessions: sessionmaker[Session], pulls: int, servers: int) -> str:
    """The DB described above; returns the API token's secret."""
    now = utcnow()
    with sessions() as session:
        repos = [Repository(owner="acme", name=f"repo-{n:02d}") for n in range(REPOSITORIES)]
        session.add_all(repos)
        pool = [
            Server(
                instance_id=f"i-{n:017x}",
                name=f"stage-{n}",
                staging_url=f"https://stage-{n}.example",
                observed_state="running",
                observed_at=now,
            )
            for n in range(servers)
        ]
        session.add_all(pool)
        session.flush()
        statuses = (EnvironmentStatus.READY, EnvironmentStatus.DEPLOYING)
        for n in range(pulls):
            repo = repos[n % REPOSITORIES]
            opened = now - timedelta(hours=pulls - n)
            pull = PullRequest(
                repository_id=repo.id,
                number=n + 1,
                title=f"Change number {n + 1} to the shop",
                author_login=f"dev{n % 37}",
                head_ref=f"feature/{n}",
                head_sha=f"{n:040x}",
                state=PullRequestState.OPEN,
                labels=["staging"],
                opened_at=opened,
                updated_at=opened,
            )
            session.add(pull)
            session.flush()
            held = n < servers
            session.add(
                Environment(
                    pull_request_id=pull.id,
                    server_id=pool[n].id if held else None,
                    status=statuses[n % 2] if held else EnvironmentStatus.QUEUED,
                    schema_name=f"pr_{repo.id}_{n + 1}" if held else None,
                    queued_at=opened,
                    assigned_at=opened if held else None,
                )
            )
            session.add_all(
                Event(
                    kind=kind,
                    message=f"#{n + 1} {kind}",
                    repository_id=repo.id,
                    pull_request_id=pull.id,
                    created_at=opened + timedelta(minutes=i),
                )
                for i, kind in enumerate(("queued", "assigned", "started")[: 3 if held else 1])
            )
        session.add_all(
            PassRun(
                started_at=now - timedelta(minutes=m),
                duration_ms=900,
                github_requests=21,
                github_not_modified=20,
                ec2_calls=1,
                busy_servers=servers,
                pool_size=servers,
                queued=max(0, pulls - servers),
            )
            for m in range(24 * 60)
        )
        user = accounts.create_user(session, USERNAME, PASSWORD, Role.ADMIN)
        _, secret = api_tokens.create_token(session, user, "bench")
        session.commit()
    return secret


@contextmanager
def serving(settings: Settings, sessions: sessionmaker[Session]) -> Iterator[tuple[str, Flask]]:
    """The app in cheroot with app.py's thread pool size and heap freeze, on a loopback port."""
    app = create_app(settings, session_factory=sessions)
    freeze_startup_heap()
    server = wsgi.Server(("127.0.0.1", 0), app, numthreads=WEB_THREADS)
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    host, port = server.bind_addr
    try:
        yield f"http://{host}:{port}", app
    finally:
        server.stop()
        thread.join(timeout=5)


# --- queries per render ----------------------------------------------------------------------


@contextmanager
def counting_queries(engine: Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def naive_listing(session: Session) -> int:
    """The N+1 baseline: each PR's repository, environments and server through lazy loads."""
    rows = 0
    for pull in session.scalars(select(PullRequest).where(PullRequest.state == "open")):
        active = [e for e in pull.environments if e.status is not EnvironmentStatus.RELEASED]
        server = active[-1].server if active else None
        rows += len(pull.repository.full_name) > 0 and (server is None or bool(server.name))
    return rows


def query_counts(
    settings: Settings, engine: Engine, sessions: sessionmaker[Session], token: str
) -> dict[str, tuple[int, float]]:
    """(SQL statements, seconds) of one warm in-process request per page, and the naive listing."""
    app = create_app(settings, session_factory=sessions)
    page_cache.init_app(app, None)  # count what a render computes, not a cache hit
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    csrf = _CSRF.search(page)
    assert csrf, "no CSRF token on the login page"
    login = {"username": USERNAME, "password": PASSWORD, "csrf_token": csrf.group(1)}
    assert client.post("/login", data=login).status_code == 302
    bearer = {"Authorization": f"Bearer {token}"}
    pages: dict[str, Callable[[], object]] = {
        "dashboard /": lambda: client.get("/"),
        "api /api/v1/pulls": lambda: client.get("/api/v1/pulls", headers=bearer),
    }
    results: dict[str, tuple[int, float]] = {}
    for name, fetch in pages.items():
        fetch()  # warm: templates compiled, statement caches filled
        with counting_queries(engine) as statements:
            started = time.perf_counter()
            response = fetch()
            elapsed = time.perf_counter() - started
        assert getattr(response, "status_code", 0) == 200, (name, response)
        results[name] = (len(statements), elapsed)
    with sessions() as session:
        naive_listing(session)
    with sessions() as session, counting_queries(engine) as statements:
        started = time.perf_counter()
        naive_listing(session)
        results["naive N+1 listing"] = (len(statements), time.perf_counter() - started)
    return results


# --- the load process ------------------------------------------------------------------------


def _login(base: str) -> str:
    """Log in through the form as a browser would; returns the Cookie header to send."""
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(f"{base}/login", timeout=30) as response:
        match = _CSRF.search(response.read().decode())
    assert match, "no CSRF token on the login page"
    form = {"username": USERNAME, "password": PASSWORD, "csrf_token": match.group(1)}
    with opener.open(f"{base}/login", urllib.parse.urlencode(form).encode(), timeout=60) as r:
        assert r.status == 200, r.status
        assert urllib.parse.urlsplit(r.url).path == "/", f"login failed: ended on {r.url}"
    return "; ".join(f"{c.name}={c.value}" for c in jar)


def _fire(
    url: str, headers: dict[str, str], count: int, concurrency: int, seconds: float
) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def one(_: int) -> None:
        if time.monotonic() > deadline:
            return
        request = urllib.request.Request(url, headers=headers)
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                response.read()
                ok = response.status == 200
        except OSError as exc:
            ok, reason = False, str(exc)
        else:
            reason = "" if ok else f"HTTP {response.status}"
        elapsed = time.perf_counter() - started
        with lock:
            if ok:
                latencies.append(elapsed)
            else:
                failures.append(reason)

    for _ in range(min(5, count)):  # warm-up, not measured
        one(0)
    latencies.clear()
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(count)))
    wall = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "done": len(ordered),
        "failed": len(failures),
        "first_failure": failures[0] if failures else None,
        "p50": statistics.median(ordered) if ordered else float("nan"),
        "p95": ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] if ordered else 0.0,
        "rps": len(ordered) / wall if wall else 0.0,
    }


def write_main(args: argparse.Namespace) -> int:
    """Hold the write lock as a pass does until killed; prints how many transactions it made."""
    engine = make_engine(args.write)
    sessions = make_session_factory(engine)
    done = 0
    try:
        while True:
            with sessions() as session:
                session.execute(update(Environment).values(last_activity_at=datetime.now(UTC)))
                time.sleep(WRITER_HOLD_S)
                session.commit()
            done += 1
            time.sleep(WRITER_PAUSE_S)
    except KeyboardInterrupt:
        print(json.dumps({"transactions": done}), flush=True)
    return 0


@contextmanager
def writer(url: str) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, __file__, "--write", url], stdout=subprocess.PIPE, text=True
    )
    try:
        yield process
    finally:
        # SIGINT lands once the writer's current statement returns, which may be a whole busy
        # timeout later when immediate readers hold the lock: wait that long, then kill.
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000 + 10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def load(base: str, token: str, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """One run of the load process against ``base``; its per-endpoint results."""
    done = subprocess.run(
        [
            sys.executable, __file__, "--load", base, "--api-token", token,
            "--requests", str(args.requests), "--concurrency", str(args.concurrency),
            "--seconds", str(args.seconds),
        ],
        capture_output=True, text=True, timeout=args.seconds * 3 + 60, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"the load process failed:\n{done.stdout}\n{done.stderr}")
    results: dict[str, dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    return results


def load_main(args: argparse.Namespace) -> int:
    base: str = args.load
    cookie = _login(base)
    targets = {
        "healthz": (f"{base}/healthz", {}),
        "dashboard /": (f"{base}/", {"Cookie": cookie}),
        "api /api/v1/pulls": (
            f"{base}/api/v1/pulls",
            {"Authorization": f"Bearer {args.api_token}", "Accept": "application/json"},
        ),
    }
    results = {
        name: _fire(url, headers, args.requests, args.concurrency, args.seconds)
        for name, (url, headers) in targets.items()
    }
    print(json.dumps(results))
    return 0


# --- main ------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pulls", type=int, default=1000)
    parser.add_argument("--servers", type=int, default=300)
    parser.add_argument("--requests", type=int, default=300, help="per endpoint")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=25.0, help="time cap per endpoint")
    parser.add_argument("--load", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--api-token", help=argparse.SUPPRESS)
    parser.add_argument("--write", metavar="DATABASE_URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        return load_main(args)
    if args.write:
        return write_main(args)

    with tempfile.TemporaryDirectory(prefix="pullre-bench-web-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'controller.db'}"
        migrate.upgrade(url)
        settings = load_settings(
            environ={
                "PULLRE_CONTROLLER_DATABASE_URL": url,
                "PULLRE_CONTROLLER_SECRET_KEY": "bench-secret-key-0123456789",
                "PULLRE_CONTROLLER_SECRET_KEY_FILE": str(Path(tmp) / "secret.key"),
            }
        )
        engine = make_engine(url)
        sessions = make_session_factory(engine)
        started = time.perf_counter()
        token = seed(sessions, args.pulls, args.servers)
        print(
            f"seeded {args.pulls} PRs, {args.servers} servers in "
            f"{time.perf_counter() - started:.1f}s; {args.requests} requests per endpoint, "
            f"{args.concurrency} concurrent, at most {args.seconds:.0f}s each"
        )
        counts = query_counts(settings, engine, sessions, token)
        runs: dict[str, dict[str, dict[str, Any]]] = {}
        with serving(settings, sessions) as (base, app):
            runs["quiet"] = load(base, token, args)
            with writer(url):
                runs[THIS] = load(base, token, args)
                page_cache.init_app(app, None)
                runs[CACHE_OFF] = load(base, token, args)
                # The baseline: every request through a write session, as before read sessions.
                app.extensions[READ_FACTORY_KEY] = app.extensions[WRITE_FACTORY_KEY]
                runs[BEFORE] = load(base, token, args)
        engine.dispose()
    for name, results in runs.items():
        print(f"\n== {name}")
        report(results)
    print(f"\n{'p95 with the writer, ms':<24}{'this':>8}{'cache off':>11}{'ratio':>7}"
          f"{'before':>9}{'ratio':>7}")  # fmt: skip
    for endpoint in runs["quiet"]:
        this, off, before = (runs[run][endpoint]["p95"] for run in (THIS, CACHE_OFF, BEFORE))
        print(
            f"{endpoint:<24}{this * 1000:>8.1f}{off * 1000:>11.1f}{off / this:>7.1f}"
            f"{before * 1000:>9.1f}{before / this:>7.1f}"
        )
    queries(counts)
    return 0


def report(results: dict[str, dict[str, Any]]) -> None:
    floor = results["healthz"]
    print(f"\n{'endpoint':<20}{'done':>6}{'fail':>6}{'p50 ms':>9}{'p95 ms':>9}{'req/s':>8}"
          f"{'p50 / healthz':>15}{'req/s / healthz':>17}")  # fmt: skip
    for name, r in results.items():
        print(
            f"{name:<20}{r['done']:>6}{r['failed']:>6}{r['p50'] * 1000:>9.1f}"
            f"{r['p95'] * 1000:>9.1f}{r['rps']:>8.1f}{r['p50'] / floor['p50']:>15.1f}"
            f"{r['rps'] / floor['rps']:>17.3f}"
        )
        if r["first_failure"]:
            print(f"  first failure: {r['first_failure']}")


def queries(counts: dict[str, tuple[int, float]]) -> None:
    naive, naive_seconds = counts["naive N+1 listing"]
    print(f"\n{'SQL per request (in-process)':<30}{'queries':>8}{'ms':>9}{'naive / this':>14}")
    for name, (queries, seconds) in counts.items():
        print(f"{name:<30}{queries:>8}{seconds * 1000:>9.1f}{naive / queries:>14.1f}")
    print(f"(naive N+1 listing: {naive} queries in {naive_seconds * 1000:.0f} ms, data only)")


if __name__ == "__main__":
    sys.exit(main())
