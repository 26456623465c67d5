"""The smoke runner against real loopback servers, a real MariaDB and real subprocesses."""

from __future__ import annotations

import json
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pymysql
import pytest
from sqlalchemy import make_url

from pullre.agent.assignment import Database
from pullre.sandbox.loopback import free_port
from pullre.smoke import results as smoke_results
from pullre.smoke import runner as smoke


@dataclass
class Web:
    """A loopback HTTP server: fixed ``routes`` plus /sleep?s=N, /hang and /drip."""

    port: int = 0
    routes: dict[str, tuple[int, str, bytes]] = field(default_factory=dict)
    accepts: list[str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def route(
        self, path: str, body: bytes | str, status: int = 200, kind: str = "text/plain"
    ) -> None:
        self.routes[path] = (status, kind, body.encode() if isinstance(body, str) else body)


def _handler(web: Web) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            web.accepts.append(self.headers.get("Accept", ""))
            if url.path == "/sleep":
                time.sleep(float(parse_qs(url.query)["s"][0]))
                self._send(200, "text/plain", b"slept")
            elif url.path == "/hang":
                web.release.wait(30)
            elif url.path == "/drip":  # headers at once, then one byte every 0.2 s
                self.send_response(200)
                self.send_header("Content-Length", "100")
                self.end_headers()
                for _ in range(100):
                    if web.release.wait(0.2):
                        return
                    self.wfile.write(b"x")
                    self.wfile.flush()
            elif url.path in web.routes:
                self._send(*web.routes[url.path])
            else:
                self._send(404, "text/plain", b"not found")

        def _send(self, status: int, kind: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def serving() -> Iterator[Web]:
    state = Web()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def web() -> Iterator[Web]:
    with serving() as state:
        yield state


def checks(*entries: dict[str, Any]) -> tuple[smoke.Check, ...]:
    return smoke.parse_checks(list(entries))


def run_one(entry: dict[str, Any], target: smoke.Target, **kw: Any) -> smoke.Result:
    report = smoke.run(checks({"name": "c", **entry}), "fast", target, **kw)
    assert len(report.results) == 1
    return report.results[0]


# -- http ---------------------------------------------------------------------------------------


def test_http_checks_status_body_and_regex(web: Web) -> None:
    web.route("/ok", "hello world, version 1.2.3")
    target = smoke.Target(port=web.port)
    report = smoke.run(
        checks(
            {"name": "plain", "type": "http", "path": "/ok"},
            {"name": "contains", "type": "http", "path": "/ok", "contains": "hello world"},
            {"name": "regex", "type": "http", "path": "/ok", "regex": r"version \d+\.\d+"},
            {"name": "url", "type": "http", "url": f"http://127.0.0.1:{web.port}/ok"},
            {"name": "404 ok", "type": "http", "path": "/nope", "status": [200, 404]},
        ),
        "fast",
        target,
    )
    assert [r.result for r in report.results] == ["pass"] * 5, report.text()
    assert report.status == "pass"
    assert report.counts == {"pass": 5, "warn": 0, "fail": 0, "error": 0, "timeout": 0}


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ({"path": "/nope"}, "-> 404, expected 200"),
        ({"path": "/ok", "status": 201}, "-> 200, expected 201"),
        ({"path": "/ok", "contains": "goodbye"}, "does not contain 'goodbye'"),
        ({"path": "/ok", "regex": r"version \d+\.\d+\.\d+\.\d+"}, "does not match"),
    ],
)
def test_http_wrong_status_or_body_fails(web: Web, entry: dict[str, Any], words: str) -> None:
    web.route("/ok", "hello world, version 1.2.3")
    result = run_one({"type": "http", **entry}, smoke.Target(port=web.port))
    assert result.result == "fail"
    assert words in result.message


def test_http_connection_refused_fails() -> None:
    result = run_one({"type": "http", "path": "/"}, smoke.Target(port=free_port()))
    assert result.result == "fail"
    assert "ConnectionRefused" in result.message


def test_a_slow_answer_times_out_at_the_checks_own_timeout(web: Web) -> None:
    began = time.monotonic()
    result = run_one(
        {"type": "http", "path": "/sleep?s=3", "timeout": 0.5}, smoke.Target(port=web.port)
    )
    assert result.result == "timeout"
    assert 400 <= result.duration_ms < 1500
    assert time.monotonic() - began < 1.5


def test_a_dripping_body_cannot_outlive_the_timeout(web: Web) -> None:
    # Every byte arrives within a socket timeout; only a deadline on the whole read stops it,
    # and the check itself must stop there (not just the runner giving up on its thread).
    result = run_one({"type": "http", "path": "/drip", "timeout": 0.8}, smoke.Target(port=web.port))
    assert result.result == "timeout"
    assert result.duration_ms < 1100
    assert "within its timeout" not in result.message  # the runner's fallback wording


def test_checks_run_in_parallel(web: Web) -> None:
    began = time.monotonic()
    report = smoke.run(
        checks(*({"name": f"s{i}", "type": "http", "path": "/sleep?s=0.6"} for i in range(4))),
        "fast",
        smoke.Target(port=web.port),
    )
    assert report.status == "pass"
    assert time.monotonic() - began < 1.8  # one after another would take 2.4 s


def test_the_total_budget_ends_the_run_and_keeps_finished_results(web: Web) -> None:
    web.route("/ok", "fine")
    began = time.monotonic()
    report = smoke.run(
        checks(
            {"name": "quick", "type": "http", "path": "/ok"},
            {"name": "hang 1", "type": "http", "path": "/hang", "timeout": 60},
            {"name": "hang 2", "type": "http", "path": "/hang", "timeout": 60},
        ),
        "fast",
        smoke.Target(port=web.port),
        budget=1.0,
    )
    elapsed = time.monotonic() - began
    assert elapsed < 1.0 + 1.0, f"the run took {elapsed:.2f} s on a 1 s budget"
    assert [r.result for r in report.results] == ["pass", "timeout", "timeout"]
    assert report.status == "fail"
    assert report.failed == ["hang 1", "hang 2"]


def test_checks_queued_behind_the_budget_time_out_too(web: Web) -> None:
    began = time.monotonic()
    report = smoke.run(
        checks(*({"name": f"h{i}", "type": "http", "path": "/hang"} for i in range(3))),
        "fast",
        smoke.Target(port=web.port),
        budget=0.8,
        workers=1,  # two of them never get a thread before the budget runs out
    )
    assert time.monotonic() - began < 2.0
    assert [r.result for r in report.results] == ["timeout"] * 3


def test_a_warn_check_is_shown_but_does_not_fail_the_run(web: Web) -> None:
    report = smoke.run(
        checks({"name": "optional", "type": "http", "path": "/nope", "severity": "warn"}),
        "fast",
        smoke.Target(port=web.port),
    )
    assert [r.result for r in report.results] == ["warn"]
    assert report.status == "pass"
    assert report.failed == []


def test_only_the_requested_tier_runs(web: Web) -> None:
    web.route("/ok", "fine")
    declared = checks(
        {"name": "fast one", "type": "http", "path": "/ok"},
        {"name": "deep one", "type": "http", "path": "/nope", "tier": "deep"},
    )
    assert [r.name for r in smoke.run(declared, "fast", smoke.Target(port=web.port)).results] == [
        "fast one"
    ]
    deep = smoke.run(declared, "deep", smoke.Target(port=web.port))
    assert [(r.name, r.tier, r.result) for r in deep.results] == [("deep one", "deep", "fail")]


# -- tcp ----------------------------------------------------------------------------------------


def test_tcp_open_and_closed_ports() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        open_port = listener.getsockname()[1]
        report = smoke.run(
            checks(
                {"name": "open", "type": "tcp", "address": f"127.0.0.1:{open_port}"},
                {"name": "closed", "type": "tcp", "host": "127.0.0.1", "port": free_port()},
            ),
            "fast",
            smoke.Target(port=1),
        )
    assert [r.result for r in report.results] == ["pass", "fail"]
    assert "accepts connections" in report.results[0].message
    assert "cannot connect" in report.results[1].message


# -- command ------------------------------------------------------------------------------------


def test_command_exit_status_decides(tmp_path: Path) -> None:
    (tmp_path / "VERSION").write_text("1.2\n")
    target = smoke.Target(port=1, cwd=tmp_path, env={"PATH": os.environ["PATH"], "X": "y"})
    report = smoke.run(
        checks(
            {"name": "argv", "type": "command", "command": ["cat", "VERSION"]},
            {"name": "shell", "type": "command", "command": 'test "$X" = y && echo fine'},
            {"name": "exit 3", "type": "command", "command": "echo broken >&2; exit 3"},
            {"name": "missing", "type": "command", "command": ["no-such-binary-here"]},
        ),
        "fast",
        target,
    )
    assert [r.result for r in report.results] == ["pass", "pass", "fail", "error"]
    assert "1.2" in report.results[0].message
    assert report.results[2].message == "exit status 3: broken"
    assert report.failed == ["exit 3", "missing"]


def test_a_command_past_its_timeout_is_killed_with_its_children(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    target = smoke.Target(port=1, cwd=tmp_path, env={"PATH": os.environ["PATH"]})
    began = time.monotonic()
    result = run_one(
        {"type": "command", "command": f"sleep 1 && touch {marker}", "timeout": 0.3}, target
    )
    assert result.result == "timeout"
    assert time.monotonic() - began < 1.0
    time.sleep(1.2)
    assert not marker.exists(), "the shell's child outlived the check"


# -- sql ----------------------------------------------------------------------------------------


@pytest.fixture
def widgets_db(mysql_database_url: str, pr_database: dict[str, Any]) -> Database:
    url = make_url(mysql_database_url)
    admin = pymysql.connect(
        host=url.host,
        port=url.port or 3306,
        user=url.username,
        password=url.password or "",
        database=url.database,
    )
    with admin.cursor() as cursor:
        cursor.execute("CREATE TABLE widgets (id INT PRIMARY KEY, name VARCHAR(20))")
        cursor.execute("INSERT INTO widgets VALUES (1, 'bolt'), (2, 'nut')")
        cursor.execute("CREATE TABLE empty_table (id INT)")
    admin.commit()
    admin.close()
    return Database(**pr_database)


def test_sql_checks_run_as_the_prs_user(widgets_db: Database) -> None:
    before = set(Path(tempfile.gettempdir()).glob("pullre-smoke-*"))
    target = smoke.Target(port=1, env={"PATH": os.environ["PATH"]}, database=widgets_db)
    report = smoke.run(
        checks(
            {"name": "count", "type": "sql", "query": "SELECT COUNT(*) FROM widgets", "expect": 2},
            {"name": "any row", "type": "sql", "query": "SELECT name FROM widgets"},
            {"name": "wrong", "type": "sql", "query": "SELECT COUNT(*) FROM widgets", "expect": 5},
            {"name": "no rows", "type": "sql", "query": "SELECT id FROM empty_table"},
            {"name": "bad sql", "type": "sql", "query": "SELECT FROM nowhere"},
            {"name": "user", "type": "sql", "query": "SELECT CURRENT_USER()"},
        ),
        "fast",
        target,
    )
    by_name = {r.name: r for r in report.results}
    assert [r.result for r in report.results] == ["pass", "pass", "fail", "fail", "error", "pass"]
    assert "2 row(s)" in by_name["any row"].message
    assert "returned '2', expected '5'" in by_name["wrong"].message
    assert "no rows" in by_name["no rows"].message
    assert "ERROR" in by_name["bad sql"].message
    assert widgets_db.user in by_name["user"].message  # the PR's user, nasty password and all
    # The option file with the password exists only while the client runs.
    assert set(Path(tempfile.gettempdir()).glob("pullre-smoke-*")) == before


def test_sql_without_a_database_is_an_error() -> None:
    result = run_one({"type": "sql", "query": "SELECT 1"}, smoke.Target(port=1))
    assert result.result == "error"
    assert "no database" in result.message


# -- declaring checks ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ({"name": "x"}, "type must be one of"),
        ({"name": "x", "type": "http"}, "exactly one of path or url"),
        ({"name": "x", "type": "http", "path": "/", "url": "http://a/"}, "exactly one of"),
        ({"name": "x", "type": "http", "url": "ftp://a/"}, "http(s) URL"),
        ({"name": "x", "type": "http", "path": "/", "regex": "("}, "regex does not compile"),
        ({"name": "x", "type": "http", "path": "/", "status": "200"}, "status must be"),
        ({"name": "x", "type": "http", "path": "/", "bogus": 1}, "unknown key(s)"),
        ({"name": "x", "type": "http", "path": "/", "tier": "slow"}, "tier must be"),
        ({"name": "x", "type": "http", "path": "/", "timeout": 0}, "timeout must be"),
        ({"name": "x", "type": "tcp", "address": "nohost"}, "host:port"),
        ({"name": "x", "type": "tcp", "port": 70000}, "port must be"),
        ({"name": "x", "type": "sql"}, "query must be"),
        ({"name": "x", "type": "command", "command": []}, "command must be"),
        ({"name": "x", "type": "smoketest", "path": "/", "format": "xml"}, "format must be"),
    ],
)
def test_an_invalid_entry_is_one_error_naming_the_problem(
    entry: dict[str, Any], words: str
) -> None:
    report = smoke.run(smoke.parse_checks([entry]), "fast", smoke.Target(port=1))
    assert [r.result for r in report.results] == ["error"]
    assert words in report.results[0].message
    assert report.status == "error"  # never a pass with zero checks


def test_invalid_smoke_values_still_produce_an_error() -> None:
    for raw in ({"name": "a table, not [[smoke]]"}, ["not a table"]):
        declared = smoke.parse_checks(raw)
        report = smoke.run(declared, "fast", smoke.Target(port=1))
        assert [r.result for r in report.results] == ["error"], raw
    twice = smoke.parse_checks(
        [{"name": "a", "type": "tcp", "port": 1}, {"name": "a", "type": "tcp", "port": 2}]
    )
    assert twice[1].problem == "duplicate name"


# -- the results shape ---------------------------------------------------------------------------


def test_results_json_has_the_documented_shape(web: Web) -> None:
    web.route("/ok", "fine")
    report = smoke.run(
        checks(
            {"name": "good", "type": "http", "path": "/ok"},
            {"name": "bad", "type": "http", "path": "/nope"},
            {"name": "meh", "type": "http", "path": "/nope", "severity": "warn"},
            {"name": "slow", "type": "http", "path": "/sleep?s=2", "timeout": 0.3},
            {"name": "typo", "type": "htp"},
        ),
        "fast",
        smoke.Target(port=web.port),
    )
    body = report.to_json()
    assert smoke_results.validate_results(body) is None
    assert body["status"] == "fail"
    assert body["tier"] == "fast"
    assert body["counts"] == {"pass": 1, "warn": 1, "fail": 1, "error": 1, "timeout": 1}
    assert body["failed"] == ["bad", "slow", "typo"]
    assert isinstance(body["time_ms"], int)
    assert body["checks"][-1]["name"] == "good"  # problems first
    assert set(body["checks"][0]) == {"name", "tier", "type", "result", "duration_ms", "message"}
    assert "FAIL" in report.text().splitlines()[-1]


def test_results_json_shrinks_to_the_limit() -> None:
    results = tuple(
        smoke.Result(f"check {i}", "fast", "http", "fail" if i % 2 else "pass", 5, "m" * 500)
        for i in range(400)
    )
    body = smoke.Report("fast", results, 10).to_json(limit=16 * 1024)
    assert len(json.dumps(body)) <= 16 * 1024
    assert body["counts"]["fail"] == 200  # counts and failed names still cover every check
    assert len(body["failed"]) == 200
    assert all(check["result"] == "fail" for check in body["checks"])
    assert smoke_results.validate_results(body) is None


@pytest.mark.parametrize(
    "broken",
    [
        "not an object",
        {"status": "pass"},
        {"status": "great", "tier": "fast", "counts": {}, "failed": [], "time_ms": 1, "checks": []},
        {
            "status": "pass",
            "tier": "fast",
            "counts": {"pass": 0, "warn": 0, "fail": 1, "error": 0, "timeout": 0},
            "failed": ["x"],
            "time_ms": 1,
            "checks": [],
        },
        {
            "status": "pass",
            "tier": "fast",
            "counts": {"pass": 1, "warn": 0, "fail": 0, "error": 0, "timeout": 0},
            "failed": [],
            "time_ms": 1,
            "checks": [{"name": "x", "result": "pass"}],
        },
    ],
)
def test_validate_results_names_what_is_wrong(broken: object) -> None:
    assert smoke_results.validate_results(broken)
