"""The real controller serves its agent bundle, and an outdated agent in ``--loop`` becomes it.

Against the app in cheroot over SQLite: ``GET /api/agent/bundle`` with and without the server's
token, and an older ``pullre-agent.pyz`` run as ``python3 -I -S FILE --config INI --loop`` that
downloads the controller's bundle, replaces its own file and re-executes itself (same pid, new
version in its next heartbeat).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from pullre.agent import AGENT_VERSION
from pullre.models import Server
from pullre.servers.registry import register_server
from tests.test_agent_bundle import OLD_VERSION, identity, old_tree, write_pyz
from tests.web_fixtures import LiveServer


def _register(live: LiveServer, instance_id: str) -> tuple[int, str]:
    with live.session_factory() as session:
        server, token = register_server(session, instance_id, "http://127.0.0.1:9", "box")
        session.commit()
        return server.id, token


def _get(live: LiveServer, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(live.url + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_the_bundle_needs_the_agent_token_and_its_hash_is_its_bytes(
    live_server: LiveServer,
) -> None:
    _, token = _register(live_server, "i-0bbbbbbbbbbbbbbb1")

    assert _get(live_server, "/api/agent/bundle")[0] == 401
    assert _get(live_server, "/api/agent/bundle", Authorization="Bearer nope")[0] == 401

    status, headers, data = _get(live_server, "/api/agent/bundle", Authorization=f"Bearer {token}")
    digest = hashlib.sha256(data).hexdigest()
    assert status == 200
    assert headers["X-Pullre-Bundle-Sha256"] == digest
    assert headers["ETag"] == f'"{digest}"'
    assert data.startswith(b"#!/usr/bin/env python3\n")

    _, _, body = _get(live_server, "/api/agent/assignment", Authorization=f"Bearer {token}")
    assert json.loads(body)["agent"] == {"version": AGENT_VERSION, "sha256": digest}

    again = _get(
        live_server,
        "/api/agent/bundle",
        Authorization=f"Bearer {token}",
        **{"If-None-Match": f'"{digest}"'},
    )
    assert (again[0], again[2]) == (304, b"")


def _reported(live: LiveServer, server_id: int) -> str | None:
    with live.session_factory() as session:
        server = session.get(Server, server_id)
        assert server is not None
        return server.agent_version


def test_an_outdated_agent_in_a_loop_replaces_itself_and_runs_the_new_version(
    live_server: LiveServer, tmp_path: Path
) -> None:
    server_id, token = _register(live_server, "i-0bbbbbbbbbbbbbbb2")
    box = tmp_path / "box"
    box.mkdir()
    pyz = box / "pullre-agent.pyz"
    old = write_pyz(pyz, old_tree(tmp_path))
    ini = tmp_path / "agent.ini"
    ini.write_text(
        f"[agent]\ncontroller_url = {live_server.url}\ntoken = {token}\n"
        f"workdir = {tmp_path / 'work'}\n"
    )
    ini.chmod(0o600)
    served = _get(live_server, "/api/agent/bundle", Authorization=f"Bearer {token}")[2]
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("PULLRE_", "PYTHON"))}
    log = (tmp_path / "agent.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-I", "-S", str(pyz), "--config", str(ini), "--loop", "--interval", "1"],
        env=environ,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _reported(live_server, server_id) != identity(served):
            assert process.poll() is None, Path(log.name).read_text()
            time.sleep(0.2)
        assert _reported(live_server, server_id) == identity(served), Path(log.name).read_text()
        assert process.poll() is None  # the same process (pid) runs on: it re-executed itself
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
    output = Path(log.name).read_text()
    assert pyz.read_bytes() == served
    assert sorted(p.name for p in box.iterdir()) == ["pullre-agent.pyz"]
    # The old agent did the update: it names itself.
    assert f"updating the agent {identity(old, OLD_VERSION)} to {AGENT_VERSION}" in output
    assert output.count("updating the agent") == 1  # the new one is current: no second update
