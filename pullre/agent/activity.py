"""Whether anyone used the PR's app since the last pass, read from the kernel's socket tables.

pullre sees its own pages, API, deploys and scenario steps, but not a reviewer clicking through
the staging app itself; this box does. Each pass the agent reads ``/proc/net/tcp`` and
``/proc/net/tcp6`` (Linux, no dependency, no privilege) for sockets whose *local* port is the
app's port, and tells the controller in its heartbeat (``app_in_use``), which counts it as
activity against idle sleep and expiry.

What counts:

- an ``ESTABLISHED`` (``01``) socket: a client is connected right now;
- a ``TIME_WAIT`` (``06``) socket: a connection the app closed first ended within the last
  minute or so (Linux keeps them 60 s). This is what catches a short request made between two
  passes, since ``/proc/net/tcp`` has no per-socket counters to ask "any traffic since?".

Limits, by design: the table is sampled, twice per pass (at its start and at its heartbeat),
and passes run about once a minute. A request whose connection was closed by the *client* first
leaves its ``TIME_WAIT`` on the client's side, not here, so a single short request between two
samples can be missed; a reviewer clicking around for minutes keeps connections open (browsers
hold them idle for a while) and is seen. Conversely a tab that holds a WebSocket or a long poll
open counts as in use for as long as it stays open.

The agent's own traffic to the app (the health check and smoke checks of a deploy, a deep smoke
run) must not keep the environment awake. Those connections are closed when the checks return,
so they never show as ``ESTABLISHED`` at a sample; their ``TIME_WAIT`` sockets may, so a sample
taken within ``TIME_WAIT_S`` of the agent's last probe (``State.app_probed_at``) does not count
``TIME_WAIT`` at all (a deploy is activity of its own on the controller anyway).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

PROC_NET = Path("/proc/net")
TABLES = ("tcp", "tcp6")
ESTABLISHED = "01"
TIME_WAIT = "06"
#: How long Linux keeps a closed connection in TIME_WAIT (``TCP_TIMEWAIT_LEN``).
TIME_WAIT_S = 60.0


@dataclass(frozen=True)
class Sample:
    """Sockets on the app's port at one moment (``at``, seconds since the epoch)."""

    at: float
    established: int
    time_wait: int


def sample(port: int, *, proc_net: Path = PROC_NET, now: float | None = None) -> Sample | None:
    """The app port's ``ESTABLISHED`` and ``TIME_WAIT`` sockets now; None when there is no
    ``/proc/net/tcp`` or ``tcp6`` to read (not Linux): then nobody can tell."""
    at = time.time() if now is None else now
    established = time_wait = 0
    read_any = False
    for name in TABLES:
        try:
            text = (proc_net / name).read_text(encoding="ascii", errors="replace")
        except OSError:
            continue
        read_any = True
        for line in text.splitlines()[1:]:  # the first line is the column header
            fields = line.split()
            if len(fields) < 4 or _local_port(fields[1]) != port:
                continue
            if fields[3] == ESTABLISHED:
                established += 1
            elif fields[3] == TIME_WAIT:
                time_wait += 1
    return Sample(at, established, time_wait) if read_any else None


def in_use(found: Sample | None, probed_at: float | None) -> bool | None:
    """Whether ``found`` shows a client of the app, not counting what the agent's own checks
    may have left: ``TIME_WAIT`` is ignored within ``TIME_WAIT_S`` after ``probed_at``."""
    if found is None:
        return None
    if found.established:
        return True
    quiet = probed_at is None or not 0 <= found.at - probed_at < TIME_WAIT_S
    return quiet and found.time_wait > 0


def either(first: bool | None, second: bool | None) -> bool | None:
    """Two samples' answers as one: in use if either saw use, unknown only if both are."""
    if first is None:
        return second
    if second is None:
        return first
    return first or second


def _local_port(address: str) -> int | None:
    """``0100007F:1F90`` (or a 32-digit IPv6 address) -> 8080."""
    _, _, port = address.rpartition(":")
    try:
        return int(port, 16)
    except ValueError:
        return None
