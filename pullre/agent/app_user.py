"""The user PR code runs as, and the directory it owns: never the agent's user unless allowed.

A PR's build, migrate, start and ``command`` smoke checks are whatever its author pushed. They
run as ``[agent] app_user`` (default ``pullre-app``), a plain system user with no group beyond
its own, in an environment that carries nothing of the agent's: no token, no ini path, HOME and
TMPDIR of its own under ``app_dir``. What the agent keeps (its ini, ``workdir`` with the state,
logs and git repository) is mode 0700/0600 and owned by the agent, so the app user can neither
read nor write it.

Switching users needs root (``subprocess``'s ``user=``/``group=``). Where that is impossible
(the agent is not root, the app user does not exist, or it *is* the agent's user) the agent
refuses to run PR code, unless ``allow_same_user = true`` says this box (a laptop, the sandbox)
accepts PR code running as the agent's own user; the heartbeat tells the controller which.

``app_dir`` layout, re-made empty before each assignment (see ``cleanup``)::

    <app_dir>/            agent-owned, 0755 (the app user may pass, not write)
      home/               the app user's HOME, 0700, owned by it
      tmp/                its TMPDIR, 0700, owned by it
      checkouts/          agent-owned, 0755
        <n>/              one plain exported tree per deploy, owned by the app user
"""

from __future__ import annotations

import os
import pwd
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pullre.agent.settings import AgentSettings

#: How the controller and the Servers page name each mode.
SEPARATE = "app_user"
SAME_USER = "same_user"
REFUSED = "refused"
#: What of the agent's own environment the PR's commands may see; the rest stays behind.
PASSED_THROUGH = ("PATH", "LANG", "LANGUAGE", "TZ")
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


class Unseparated(Exception):
    """PR code cannot run as a separate user here and running it as the agent's is not allowed."""


@dataclass(frozen=True)
class AppUser:
    name: str
    uid: int
    gid: int
    root: Path
    #: False: PR code runs as the agent's own user (``allow_same_user``).
    separate: bool

    @property
    def mode(self) -> str:
        return SEPARATE if self.separate else SAME_USER

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def checkouts(self) -> Path:
        return self.root / "checkouts"

    def popen_kwargs(self) -> dict[str, Any]:
        """What ``subprocess.Popen`` needs to start a process as the app user."""
        if not self.separate:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": [], "umask": 0o022}

    def environ(self, base: Mapping[str, str]) -> dict[str, str]:
        """The start of every PR command's environment: a few locale and path variables of
        ``base``, then the app user's own identity and directories."""
        env = {key: base[key] for key in PASSED_THROUGH if key in base}
        env.update({key: value for key, value in base.items() if key.startswith("LC_")})
        env.setdefault("PATH", DEFAULT_PATH)
        env.update(
            HOME=str(self.home),
            TMPDIR=str(self.tmp),
            USER=self.name,
            LOGNAME=self.name,
            SHELL="/bin/sh",
        )
        return env

    def prepare(self) -> None:
        """Create the (empty or existing) layout with its owners and modes."""
        for path in (self.root, self.checkouts):
            path.mkdir(parents=True, exist_ok=True)
            os.chmod(path, 0o755)  # noqa: S103 - the app user passes through, never writes
        for path in (self.home, self.tmp):
            self.own_dir(path)

    def own_dir(self, path: Path) -> Path:
        """``path`` as a directory of the app user's, 0700 (a checkout, its HOME)."""
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o700)
        self.give(path)
        return path

    def give(self, path: Path) -> None:
        """Hand ``path`` (not what a symlink there points at) to the app user."""
        if self.separate:
            os.chown(path, self.uid, self.gid, follow_symlinks=False)


def resolve(settings: AgentSettings) -> AppUser:
    """The app user this agent may run PR code as. Raises Unseparated with what to fix."""
    me = os.geteuid()
    why = _why_not_separate(settings.app_user, me)
    if why is None:
        entry = pwd.getpwnam(settings.app_user)
        return AppUser(entry.pw_name, entry.pw_uid, entry.pw_gid, settings.app_root, True)
    if not settings.allow_same_user:
        raise Unseparated(
            f"refusing to run PR code: {why}. Create the user (useradd --system "
            f"{settings.app_user}) and run the agent as root, or set [agent] "
            "allow_same_user = true on a box where PR code may run as the agent's own user"
        )
    name = pwd.getpwuid(me).pw_name if _known_uid(me) else str(me)
    return AppUser(name, me, os.getegid(), settings.app_root, False)


def _why_not_separate(name: str, me: int) -> str | None:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return f"the app user {name!r} does not exist"
    if entry.pw_uid == me:
        return f"the app user {name!r} is the agent's own user"
    if entry.pw_uid == 0:
        return f"the app user {name!r} is root"
    if me != 0:
        return f"the agent runs as uid {me}, not root, so it cannot switch to {name!r}"
    return None


def _known_uid(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True


def private_problems(settings: AgentSettings) -> list[str]:
    """What of the agent's own files another user could read: checked before PR code runs."""
    problems = []
    if settings.source is not None:
        try:
            mode = settings.source.stat().st_mode
        except OSError:
            mode = 0
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            problems.append(
                f"{settings.source} (the agent's ini, with its token) is open to other users "
                f"(mode {stat.filemode(mode)}); chmod 600 it"
            )
    return problems


def read_owned(path: Path, app: AppUser) -> bytes:
    """A regular file of the app user's tree, read by the agent without being led elsewhere:
    no symlink followed at the end, and (when separate) only a file the app user owns, so
    neither a symlink nor a hard link to the agent's files turns into their contents."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{path.name} is not a regular file")
        if app.separate and info.st_uid != app.uid:
            raise OSError(f"{path.name} is not the app user's file")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read()
    finally:
        os.close(fd)
