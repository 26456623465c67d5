"""The sandbox end to end, as a newcomer runs it: ``python app.py --sandbox`` as a subprocess.

Every real part works together here (stand-in, moto, controller, reconcile loop, agents, staging
MariaDB); the test only reads what a user sees (the JSON API, the staging URLs) and drives it
with the CLI, then checks that Ctrl-C leaves no process, schema or temp dir behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pymysql
from sqlalchemy import make_url

from pullre.sandbox import processes
from pullre.sandbox.loopback import free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
DEADLINE_S = 120.0


def _get(url: str, token: str | None = None) -> str:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(response.read().decode())


def _wait_for(what: str, check: Any, deadline: float = DEADLINE_S) -> Any:
    end = time.monotonic() + deadline
    last: Any = None
    while time.monotonic() < end:
        try:
            last = check()
        except OSError as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}; last seen: {last!r}")


def _cli(environ: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pullre", "sandbox", *args],
        cwd=REPO_ROOT,
        env=environ,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def _schemas(server_url: str, prefix: str) -> list[str]:
    url = make_url(server_url)
    connection = pymysql.connect(
        host=url.host, port=url.port or 3306, user=url.username, password=url.password or ""
    )
    with connection, connection.cursor() as cursor:
        cursor.execute("SHOW DATABASES")
        return [name for (name,) in cursor.fetchall() if str(name).startswith(prefix)]


def test_the_sandbox_runs_the_whole_loop_and_leaves_nothing_behind(
    mysql_server_url: str, tmp_path: Path
) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PULLRE_")}
    environ.update(PULLRE_SANDBOX_MYSQL_URL=mysql_server_url, TMPDIR=str(tmp_path))
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "app.py", "--sandbox", "--port", str(port)],
        cwd=REPO_ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    home: Path | None = None
    try:
        state_files = _wait_for(
            "the sandbox's state file", lambda: list(tmp_path.glob("pullre-sandbox-*/sandbox.json"))
        )
        home = state_files[0].parent
        facts = json.loads(state_files[0].read_text())
        api = f"{facts['controller_url']}/api/v1/pulls"

        def pulls() -> dict[int, dict[str, Any]]:
            items = json.loads(_get(api, facts["api_token"]))["items"]
            return {item["number"]: item for item in items}

        def status(number: int, seen: dict[int, dict[str, Any]]) -> str | None:
            env = seen[number]["environment"]
            return env["status"] if env else None

        def settled() -> dict[int, dict[str, Any]] | None:
            seen = pulls()
            wanted = {1: "ready", 2: "ready", 3: "failed", 4: "queued"}
            if {n: status(n, seen) for n in wanted if n in seen} == wanted and seen[3]["smoke"]:
                return seen
            return None

        seen = _wait_for("three PRs on servers and the fourth queued", settled)
        # The broken PR names its failing smoke check; the queue says where PR 4 stands.
        assert seen[3]["smoke"]["failed"] == ["orders page"]
        assert seen[4]["environment"]["queue_position"] == 1
        # Each staging URL serves its own schema: only the migration PR's row changed.
        urls = {n: seen[n]["environment"]["url"] for n in (1, 2, 3)}
        assert len(set(urls.values())) == 3
        assert _get(urls[1] + "row") == "hello from the migration PR"
        assert _get(urls[2] + "row") == "hello from base"
        assert _get(urls[3] + "row") == "hello from base"
        schemas = _schemas(mysql_server_url, facts["schema_prefix"])
        assert sorted(schemas) == [f"{facts['schema_prefix']}{n}" for n in (1, 2, 3)]
        # Only this sandbox's own base schema: another sandbox may run beside it.
        assert _schemas(mysql_server_url, facts["base_schema"]) == [facts["base_schema"]]

        closed = _cli(environ, "close", "2")
        assert closed.returncode == 0, closed.stderr

        def handed_over() -> dict[int, dict[str, Any]] | None:
            seen = pulls()
            return seen if 2 not in seen and status(4, seen) == "ready" else None

        seen = _wait_for("the queued PR to get the freed server", handed_over)
        assert _get(seen[4]["environment"]["url"] + "row") == "hello from base"

        # A push to the migration PR redeploys it; its migration is not applied twice.
        before = seen[1]["head_sha"]
        pushed = _cli(environ, "push", "1")
        assert pushed.returncode == 0, pushed.stderr

        def redeployed() -> dict[int, dict[str, Any]] | None:
            seen = pulls()
            env = seen[1]["environment"]
            fresh = seen[1]["head_sha"] != before and env["deployed_sha"] == seen[1]["head_sha"]
            return seen if fresh and env["status"] == "ready" else None

        seen = _wait_for("the pushed PR to redeploy", redeployed)
        page = _get(seen[1]["environment"]["url"])
        assert "pushed at" in page
        assert "hello from the migration PR" in page
        # The stand-in's page lists the PRs with their buttons; closed ones have none.
        control = _get(facts["control_url"])
        assert 'action="/pulls/1/close"' in control
        assert 'action="/pulls/2/close"' not in control
    finally:
        process.send_signal(signal.SIGINT)
        try:
            output, _ = process.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
            raise AssertionError(f"the sandbox did not stop after SIGINT:\n{output}") from None

    assert process.returncode == 0, output
    assert "user admin, password" in output
    assert home is not None
    assert not home.exists()
    assert processes.under(home) == []
    assert _schemas(mysql_server_url, facts["schema_prefix"]) == []
    assert _schemas(mysql_server_url, facts["base_schema"]) == []
