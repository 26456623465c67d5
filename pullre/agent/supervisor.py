"""The app process: started in its own session, known by its recorded PID, stopped by group.

The app is found again only through the PID this agent recorded, checked against the process's
start time in ``/proc`` so a recycled PID (after a reboot, or years of uptime) is never
signalled; ``ps`` is never searched. Its own session makes it the leader of a process group, so
stopping it also stops the workers, shells and servers it spawned.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: Apps this process started, so they are reaped (a zombie still answers ``kill(pid, 0)``) and
#: their ``Popen`` objects do not warn about being dropped while running.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
STOP_TIMEOUT_S = 10.0


def start(
    argv: Sequence[str],
    cwd: Path,
    env: Mapping[str, str],
    log_path: Path,
    popen_kwargs: Mapping[str, Any] | None = None,
) -> int:
    """Start the app (as ``popen_kwargs`` say: the app user); returns its PID. Raises OSError
    when the command cannot be run."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if log_path.exists():
        os.replace(log_path, log_path.with_name(log_path.name + ".1"))
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - an argv list, no shell
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **(popen_kwargs or {}),
        )
    _CHILDREN[process.pid] = process
    return process.pid


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), None where unknown."""
    fields = _stat(pid)
    return int(fields[19]) if fields else None


def is_alive(pid: int, started: int | None) -> bool:
    child = _CHILDREN.get(pid)
    if child is not None:  # kept until stop(), so exit_status() can still tell how it ended
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: certainly not the app we started
        return False
    fields = _stat(pid)
    if fields is None:
        return not Path("/proc").is_dir()  # no /proc at all: trust kill(pid, 0)
    if fields[0] == "Z":
        return False
    return started is None or int(fields[19]) == started


def exit_status(pid: int) -> int | None:
    """The exit status of an app this process started and that has ended, else None."""
    child = _CHILDREN.get(pid)
    return None if child is None else child.poll()


def stop(pid: int, started: int | None, timeout: float = STOP_TIMEOUT_S) -> bool:
    """SIGTERM the app's group, SIGKILL it after ``timeout``; False when it was not running."""
    if not is_alive(pid, started):
        # Not even its leftovers are signalled: the PID may belong to someone else by now.
        _CHILDREN.pop(pid, None)
        return False
    _signal_group(pid, signal.SIGTERM)
    if not _wait_gone(pid, started, timeout):
        _signal_group(pid, signal.SIGKILL)
        _wait_gone(pid, started, 5.0)
    _signal_group(pid, signal.SIGKILL)  # children that outlived their leader
    _CHILDREN.pop(pid, None)
    return True


def _wait_gone(pid: int, started: int | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while is_alive(pid, started):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _stat(pid: int) -> list[str] | None:
    """Fields of ``/proc/<pid>/stat`` from the state on (the name may contain spaces)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()
