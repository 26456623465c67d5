"""Who listens on a TCP port, read from the kernel: so a green health check means pullre's app.

An HTTP answer on the app's port proves only that *something* answers there. Before the app
starts, a port someone else already listens on fails the ``start`` step naming that process;
after it starts, an answer counts only while the sockets listening on the port belong to the
process group pullre started (the app runs in a session of its own, so its workers share that
group). Linux only and standard library only: ``/proc/net/tcp{,6}`` give the listening sockets'
inodes, ``/proc/<pid>/fd`` which processes hold them. The agent runs as root, so it sees every
process; where ``/proc`` cannot be read the answer is "cannot tell", never a false alarm.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
TABLES = ("tcp", "tcp6")
LISTEN = "0A"


@dataclass(frozen=True)
class Listener:
    pid: int
    command: str
    group: int

    def __str__(self) -> str:
        return f"pid {self.pid} ({self.command})"


def listening_inodes(port: int, *, proc: Path = PROC) -> set[int] | None:
    """Inodes of the sockets listening on ``port``; None when no table can be read."""
    inodes: set[int] = set()
    read_any = False
    for table in TABLES:
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        read_any = True
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != LISTEN:
                continue
            _, _, local_port = fields[1].rpartition(":")
            if int(local_port, 16) == port:
                inodes.add(int(fields[9]))
    return inodes if read_any else None


def holders(inodes: set[int], *, proc: Path = PROC) -> list[Listener]:
    """The processes holding any of these socket inodes (those this agent may look into)."""
    wanted = {f"socket:[{inode}]" for inode in inodes}
    found: list[Listener] = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue  # gone meanwhile, or not ours to see
        if _links(fds) & wanted:
            found.append(_listener(entry))
    return sorted(found, key=lambda listener: listener.pid)


def on_port(port: int, *, proc: Path = PROC) -> list[Listener] | None:
    """Who listens on ``port``: [] for nobody, None when it cannot be told."""
    inodes = listening_inodes(port, proc=proc)
    if inodes is None:
        return None
    if not inodes:
        return []
    found = holders(inodes, proc=proc)
    # Listening sockets held by no visible process: someone listens, who is not known.
    return found or [Listener(pid=0, command="a process this agent cannot see", group=-1)]


def describe(listeners: list[Listener]) -> str:
    return ", ".join(str(listener) for listener in listeners)


def owned_by_group(port: int, group: int, *, proc: Path = PROC) -> bool | None:
    """True when every process listening on ``port`` is in process group ``group``; False when
    another one listens there (or nobody does); None when it cannot be told."""
    listeners = on_port(port, proc=proc)
    if listeners is None:
        return None
    return bool(listeners) and all(listener.group == group for listener in listeners)


def _links(fds: list[Path]) -> set[str]:
    links = set()
    for fd in fds:
        try:
            links.add(os.readlink(fd))
        except OSError:
            continue  # closed since the listing (the listing's own fd, for one)
    return links


def _listener(entry: Path) -> Listener:
    pid = int(entry.name)
    try:
        raw = (entry / "cmdline").read_bytes()
        command = " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)
    except OSError:
        command = ""
    try:
        stat = (entry / "stat").read_text()
        # The command name in (...) may hold spaces and parentheses: fields follow the last ")".
        group = int(stat[stat.rindex(")") + 2 :].split()[2])
    except (OSError, ValueError, IndexError):
        group = -1
    return Listener(pid=pid, command=command[:200] or "?", group=group)
