"""The five kinds of smoke check and how each one is carried out against a deployed PR.

Standard library only: the staging agent imports this (see ``pullre.smoke.runner``).

Every check gets a hard deadline and must return by it, because the runner promises the deploy
a total budget: HTTP bodies are read in pieces against the deadline (a socket timeout alone
restarts on every byte a slow server drips), and subprocesses run in their own process group
that is killed whole on timeout (``sh -c`` would otherwise leave its children holding the pipes
and the thread waiting on them).

SQL runs through the ``mariadb``/``mysql`` client as the PR's own user; the password goes into a
0600 option file that exists only while the client runs, never into argv where ``ps`` shows it.
``command`` and ``sql`` checks are the repository's own code (the client runs ``\\!`` lines), so
both run as the target's app user, never as the agent's.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from pullre.agent.app_user import AppUser
from pullre.agent.mysql_options import Credentials, find_client, option_file
from pullre.smoke.formats import Outcome, parse

BODY_LIMIT = 1024 * 1024
_CHUNK = 16 * 1024


class CheckTimeout(Exception):
    """The check did not finish within its time; it is reported ``timeout``."""


class Unreachable(Exception):
    """No HTTP answer at all (refused, reset, not HTTP): the check fails."""


class Database(Credentials, Protocol):
    """The PR's database login (the agent's ``Assignment.database`` has this shape)."""

    @property
    def name(self) -> str: ...


@dataclass(frozen=True)
class Target:
    """Where checks run: the app's port on this box, its checkout, environment and database."""

    port: int
    cwd: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    database: Database | None = None
    host: str = "127.0.0.1"
    #: Who runs ``command`` and ``sql`` checks; None: this process's own user.
    app: AppUser | None = None

    def popen_kwargs(self) -> dict[str, Any]:
        return self.app.popen_kwargs() if self.app is not None else {}


@dataclass(frozen=True)
class Http:
    url: str  # a path ("/health") or an absolute http(s) URL
    method: str = "GET"
    status: tuple[int, ...] = (200,)
    contains: str | None = None
    regex: re.Pattern[str] | None = None
    headers: tuple[tuple[str, str], ...] = ()

    def run(self, target: Target, deadline: float) -> Outcome:
        try:
            status, body = fetch(target, self.url, self.method, self.headers, deadline)
        except Unreachable as exc:
            return Outcome("fail", str(exc))
        text = body.decode("utf-8", errors="replace")
        where = f"{self.method} {self.url} -> {status}"
        if status not in self.status:
            wanted = " or ".join(str(s) for s in self.status)
            return Outcome("fail", f"{where}, expected {wanted}: {_snippet(text)}")
        if self.contains is not None and self.contains not in text:
            return Outcome("fail", f"{where}, body does not contain {self.contains!r}")
        if self.regex is not None and not self.regex.search(text):
            return Outcome("fail", f"{where}, body does not match /{self.regex.pattern}/")
        return Outcome("pass", f"{where} ({len(body)} bytes)")


@dataclass(frozen=True)
class Tcp:
    host: str
    port: int

    def run(self, target: Target, deadline: float) -> Outcome:
        try:
            with socket.create_connection((self.host, self.port), timeout=_left(deadline)):
                return Outcome("pass", f"{self.host}:{self.port} accepts connections")
        except TimeoutError:
            raise CheckTimeout(f"connecting to {self.host}:{self.port} timed out") from None
        except OSError as exc:
            return Outcome(
                "fail", f"cannot connect to {self.host}:{self.port}: {exc.strerror or exc}"
            )


@dataclass(frozen=True)
class Sql:
    query: str
    expect: str | None = None  # the first column of the first row; None: at least one row

    def run(self, target: Target, deadline: float) -> Outcome:
        database = target.database
        if database is None:
            return Outcome("error", "this environment has no database to query")
        client = find_client(target.env.get("PATH"))
        if client is None:
            return Outcome("error", "neither the mariadb nor the mysql client is installed")
        app = target.app
        directory = app.tmp if app is not None else None
        with option_file(database, prefix="pullre-smoke-", directory=directory) as options:
            if app is not None:
                app.give(options)
            argv = [
                client,
                f"--defaults-file={options}",  # must come first; reads no other file
                "--batch",
                "--skip-column-names",
                "--default-character-set=utf8mb4",
                f"--connect-timeout={max(1, int(_left(deadline)))}",
                f"--database={database.name}",
            ]
            env = {"PATH": target.env.get("PATH", os.defpath), "LANG": "C.UTF-8"}
            code, output = run_process(
                argv, None, env, deadline, stdin=self.query.encode(), **target.popen_kwargs()
            )
        if code != 0:
            return Outcome("error", f"the query failed (exit {code}): {_snippet(output)}")
        rows = [line.split("\t") for line in output.splitlines() if line]
        if not rows:
            return Outcome("fail", "the query returned no rows")
        first = rows[0][0]
        if self.expect is not None and first != self.expect:
            return Outcome("fail", f"the query returned {first[:100]!r}, expected {self.expect!r}")
        return Outcome("pass", f"{len(rows)} row(s), first value {first[:100]!r}")


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]

    def run(self, target: Target, deadline: float) -> Outcome:
        try:
            code, output = run_process(
                list(self.argv), target.cwd, target.env, deadline, **target.popen_kwargs()
            )
        except OSError as exc:
            return Outcome("error", f"cannot run {self.argv[0]!r}: {exc.strerror or exc}")
        if code != 0:
            return Outcome("fail", f"exit status {code}: {_snippet(output)}")
        return Outcome("pass", f"exit status 0{': ' + _snippet(output) if output.strip() else ''}")


@dataclass(frozen=True)
class Smoketest:
    url: str
    format: str = "auto"

    def run(self, target: Target, deadline: float) -> Outcome:
        headers = (("Accept", "application/json, text/plain;q=0.5"),)
        try:
            status, body = fetch(target, self.url, "GET", headers, deadline)
        except Unreachable as exc:
            return Outcome("fail", str(exc))
        outcome = parse(body, self.format)
        if outcome.result == "error" and not 200 <= status < 300:
            return Outcome(
                "error", f"GET {self.url} -> {status}: {_snippet(body.decode('utf-8', 'replace'))}"
            )
        return Outcome(
            outcome.result, f"GET {self.url} -> {status}: {outcome.message}", outcome.tests
        )


def fetch(
    target: Target,
    url: str,
    method: str,
    headers: tuple[tuple[str, str], ...],
    deadline: float,
) -> tuple[int, bytes]:
    """(status, body) of one request, redirects not followed.

    Raises CheckTimeout, or Unreachable when there is no HTTP answer to judge.
    """
    if url.startswith("/"):
        scheme, host, port, path = "http", target.host, target.port, url
    else:
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.hostname or ""
        port = parts.port or (443 if scheme == "https" else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    kind = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
    connection = kind(host, port, timeout=_left(deadline))
    try:
        connection.request(method, path, headers={"User-Agent": "pullre-smoke", **dict(headers)})
        sock = connection.sock  # the connection forgets it once a closing response arrives
        response = connection.getresponse()
        chunks: list[bytes] = []
        size = 0
        while size < BODY_LIMIT:
            left = _left(deadline)
            if sock is not None:
                sock.settimeout(left)
            chunk = response.read1(_CHUNK) if method != "HEAD" else b""
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return response.status, b"".join(chunks)
    except TimeoutError:
        raise CheckTimeout(f"{method} {url}: no complete answer in time") from None
    except (OSError, http.client.HTTPException) as exc:
        raise Unreachable(f"{method} {url}: {type(exc).__name__}: {exc}") from None
    finally:
        connection.close()


def run_process(
    argv: list[str],
    cwd: Path | None,
    env: Mapping[str, str],
    deadline: float,
    stdin: bytes | None = None,
    **popen_kwargs: Any,
) -> tuple[int, str]:
    """(exit status, combined output tail); the whole process group dies at the deadline.
    ``popen_kwargs``: who runs it (``AppUser.popen_kwargs``)."""
    process = subprocess.Popen(  # noqa: S603 - an argv list; strings ran as sh -c by config
        argv,
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        **popen_kwargs,
    )
    try:
        output, _ = process.communicate(stdin, timeout=_left(deadline))
    except subprocess.TimeoutExpired:
        _kill_group(process)
        process.communicate()
        raise CheckTimeout(f"{argv[0]} still running at its deadline; killed") from None
    except BaseException:
        _kill_group(process)
        process.wait()
        raise
    return process.returncode, output.decode("utf-8", errors="replace")


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise CheckTimeout("no time left")
    return left


def _snippet(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
