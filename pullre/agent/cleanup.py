"""Making the box clean between two PRs: no process of the app user, none of its files.

A PR's code can leave a daemon that left the app's process group (``setsid``), files in its
HOME, in ``/tmp``, ``/var/tmp`` or ``/dev/shm``, and a crontab. Before the next PR's code runs
all of that goes: every process whose real, effective, saved or filesystem uid is the app user's
is killed (SIGKILL, ``/proc`` scanned again until none is left, so a process forking while it
dies is caught on the next round), then ``app_dir`` is emptied and the shared temporary
directories are swept for what the app user owns (descending only into world-writable
directories, the only ones it could have written into). What cannot be done is returned as a
list of problems, and the agent then reports the server ``dirty``: it takes no new PR until an
admin has looked and marked it clean.

When PR code runs as the agent's own user (``allow_same_user``) nothing can be told apart by
uid: only the app dir is emptied (the recorded app is stopped by the caller).

Emptying is a rename, not a delete: a checkout with a virtualenv is thousands of files and took
20 s to remove, which the next PR waited for. The old trees move into ``<app_dir>/.trash`` (the
agent's, 0700: nothing of the app user's can reach them there, and every process of its is dead
by then) and :func:`empty_trash` deletes them at the end of the pass, after the next PR is
serving. A pass always empties what earlier passes left, so trash never piles up.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import time
from pathlib import Path

from pullre.agent.app_user import AppUser

KILL_TIMEOUT_S = 5.0
#: Where any user may create files, so where the app user may have left some.
SHARED_TEMP = tuple(Path(p) for p in ("/tmp", "/var/tmp", "/dev/shm", "/run/lock"))  # noqa: S108
CRONTABS = Path("/var/spool/cron/crontabs")
#: Where emptied directories wait, inside ``app_dir``, to be deleted at the end of the pass.
TRASH = ".trash"
PROC = Path("/proc")


def clean(app: AppUser, *, kill_timeout: float = KILL_TIMEOUT_S) -> list[str]:
    """Kill and remove everything of the app user's; returns what could not be (empty: clean)."""
    problems: list[str] = []
    if app.separate:
        problems.extend(kill_all(app.uid, app.name, kill_timeout))
    if problems:  # a live process could write again behind the removal: leave files be
        return problems
    for path in (app.checkouts, app.home, app.tmp):
        problems.extend(discard(app, path))
    if app.separate:
        for directory in SHARED_TEMP:
            problems.extend(sweep(directory, app.uid))
        problems.extend(_remove(CRONTABS / app.name))
    if not problems:
        try:
            app.prepare()
        except OSError as exc:
            problems.append(f"cannot re-create {app.root}: {exc}")
    return problems


def trash_of(app: AppUser) -> Path:
    return app.root / TRASH


def discard(app: AppUser, path: Path) -> list[str]:
    """Move ``path`` out of the app user's reach at once; :func:`empty_trash` deletes it."""
    if not path.exists() and not path.is_symlink():
        return []
    trash = trash_of(app)
    try:
        trash.mkdir(mode=0o700, exist_ok=True)
        os.chmod(trash, 0o700)
        path.rename(trash / f"{path.name}-{time.time_ns()}")
    except OSError:
        return _remove(path)  # another filesystem, say: remove it now instead
    return []


def empty_trash(app: AppUser) -> list[str]:
    """Delete what :func:`discard` set aside (off the deploy's critical path)."""
    trash = trash_of(app)
    problems: list[str] = []
    try:
        entries = list(trash.iterdir())
    except OSError:
        return []
    for entry in entries:
        problems.extend(_remove(entry))
    return problems


def processes_of(uid: int) -> dict[int, str]:
    """Live (not zombie) processes with ``uid`` among their uids: pid -> command name."""
    found: dict[int, str] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text(errors="replace")
        except OSError:
            continue  # gone meanwhile
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        uids = {int(value) for value in fields.get("Uid", "").split()}
        if uid in uids and not fields.get("State", "").strip().startswith("Z"):
            found[int(entry.name)] = fields.get("Name", "?").strip()
    return found


def kill_all(uid: int, name: str, timeout: float = KILL_TIMEOUT_S) -> list[str]:
    """SIGKILL every process of ``uid`` until none is left or ``timeout`` runs out."""
    if uid == 0 or uid == os.geteuid():
        return [f"refusing to kill every process of uid {uid} (root or the agent itself)"]
    deadline = time.monotonic() + timeout
    while True:
        alive = processes_of(uid)
        if not alive:
            return []
        if time.monotonic() > deadline:
            listed = ", ".join(f"{pid} ({command})" for pid, command in sorted(alive.items()))
            return [f"process(es) of {name} still alive after {timeout:g} s: {listed[:500]}"]
        for pid in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)


def sweep(directory: Path, uid: int) -> list[str]:
    """Remove what ``uid`` owns in ``directory`` and in its world-writable subdirectories."""
    problems: list[str] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []  # no such directory here
    for entry in entries:
        path = Path(entry.path)
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if info.st_uid == uid:
            problems.extend(_remove(path))
        elif stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_IWOTH:
            problems.extend(sweep(path, uid))
    return problems


def _remove(path: Path) -> list[str]:
    try:
        info = path.lstat()
    except FileNotFoundError:
        return []
    except OSError as exc:
        return [f"cannot look at {path}: {exc.strerror or exc}"]
    try:
        if stat.S_ISDIR(info.st_mode):
            shutil.rmtree(path)  # never follows a symlink out of the tree
        else:
            path.unlink()
    except OSError as exc:
        return [f"cannot remove {path}: {exc.strerror or exc}"]
    return []
