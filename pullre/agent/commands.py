"""Running one deploy command (build, migrate) with its output in a log file, bounded in time.

Output goes to a file rather than memory so a chatty build cannot exhaust the agent, and only its
tail travels to the controller. Each command gets its own process group, so a timeout kills what
the command spawned too, not just the shell in front of it.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOG_LIMIT = 64 * 1024


@dataclass(frozen=True)
class Result:
    #: None when the command could not be started or was killed for running too long.
    returncode: int | None
    log: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def read_tail(path: Path, limit: int = LOG_LIMIT) -> str:
    """The last ``limit`` bytes of a log file, decoded leniently; empty when there is none."""
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - limit))
            data = handle.read()
    except OSError:
        return ""
    return data.decode("utf-8", errors="replace")


def run(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    log_path: Path,
    timeout: float,
    stdin_data: bytes | None = None,
    popen_kwargs: Mapping[str, Any] | None = None,
) -> Result:
    """``popen_kwargs``: who the command runs as (``AppUser.popen_kwargs``)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        log.write(f"$ {shlex.join(argv)}\n".encode())
        log.flush()
        try:
            process = subprocess.Popen(  # noqa: S603 - an argv list, no shell
                list(argv),
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **(popen_kwargs or {}),
            )
        except OSError as exc:
            log.write(f"cannot run {argv[0]}: {exc.strerror or exc}\n".encode())
            log.flush()
            return Result(None, read_tail(log_path))
        try:
            process.communicate(stdin_data, timeout=timeout)
            code: int | None = process.returncode
        except subprocess.TimeoutExpired:
            _kill_group(process.pid)
            process.wait()
            log.write(f"\nkilled: still running after {timeout:.0f} s\n".encode())
            code = None
        if code:
            log.write(f"\nexit status {code}\n".encode())
    return Result(code, read_tail(log_path))


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
