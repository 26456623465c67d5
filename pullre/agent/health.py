"""Waiting until the app answers on its port, or telling why it never did.

A plain ``http.client`` request to 127.0.0.1, redirects not followed: a 3xx already proves the
app is up, and following it could lead the agent off the box. An answer counts only while the
app pullre started is alive and its process group holds the listening socket
(:mod:`pullre.agent.listeners`): another program on the port must never turn a deploy green.
"""

from __future__ import annotations

import http.client
import time
from dataclasses import dataclass

from pullre.agent import listeners, supervisor

POLL_INTERVAL_S = 0.2
REQUEST_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str


def probe(port: int, path: str) -> tuple[int | None, str]:
    """(HTTP status or None, what happened) for one request."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
    try:
        connection.request("GET", path, headers={"User-Agent": "pullre-agent"})
        response = connection.getresponse()
        response.read(65536)
        return response.status, f"HTTP {response.status} {response.reason}"
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    finally:
        connection.close()


def wait_healthy(pid: int, started: int | None, port: int, path: str, timeout: float) -> Outcome:
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while True:
        if not supervisor.is_alive(pid, started):
            status = supervisor.exit_status(pid)
            how = f" with status {status}" if status is not None else ""
            return Outcome(False, f"the app exited{how} before answering on port {port}")
        status, last = probe(port, path)
        if status is not None and 200 <= status < 400:
            owned = listeners.owned_by_group(port, pid)
            if owned is not False:
                return Outcome(True, f"GET http://127.0.0.1:{port}{path} -> {last}")
            found = listeners.on_port(port) or []
            last = (
                f"{last} from {listeners.describe(found) or 'nobody listening'}, "
                f"not from the app pullre started (pid {pid})"
            )
        if time.monotonic() >= deadline:
            return Outcome(
                False,
                f"GET http://127.0.0.1:{port}{path} did not answer 2xx/3xx within "
                f"{timeout:g} s (last: {last})",
            )
        time.sleep(POLL_INTERVAL_S)
