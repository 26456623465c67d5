"""Finding processes by where they live: anything running from under the sandbox's temp dir.

The agents' apps run in sessions of their own and outlive the ``client.py`` pass that started
them, so they are not the sandbox's children; the sandbox's last sweep (and the end-to-end test)
finds any that escaped the orderly stop by their working directory or command line in ``/proc``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path


def under(root: Path) -> list[int]:
    """PIDs (other than this process) whose cwd or command line is inside ``root``."""
    prefix = str(root.resolve())
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:
            cwd = ""
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            cmdline = ""
        if cwd == prefix or cwd.startswith(prefix + "/") or prefix in cmdline:
            found.append(int(entry.name))
    return found


def stop_all(root: Path, timeout: float = 10.0) -> list[int]:
    """SIGTERM every process under ``root`` (and its group), SIGKILL what is left; the PIDs."""
    pids = under(root)
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and under(root):
        time.sleep(0.1)
    for pid in under(root):
        _signal(pid, signal.SIGKILL)
    return pids


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)
    with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, signum)
