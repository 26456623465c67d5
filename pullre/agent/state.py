"""What this box runs, remembered across passes in ``<workdir>/state.json``.

A pass never trusts that the previous one finished, so the file is replaced atomically and read
defensively: a missing or unreadable file means "nothing known runs", which at worst costs one
redeploy.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class App:
    """The app process this agent started, identified by PID *and* start time (PID reuse)."""

    pid: int
    start_time: int | None
    sha: str
    checkout: str
    #: The port it listens on (None in state files written before the agent recorded it).
    port: int | None = None


@dataclass
class Failure:
    """The last failed deploy of a sha, so it is retried with growing pauses, not every pass."""

    sha: str
    attempts: int
    at: float


@dataclass
class State:
    environment_id: int | None = None
    #: The token reports about ``environment_id`` carry (the controller keeps only its hash).
    environment_token: str | None = None
    pr_number: int | None = None
    #: The sha whose deploy passed its health check and whose app is ``app``.
    deployed_sha: str | None = None
    app: App | None = None
    failure: Failure | None = None
    next_checkout: int = 1
    checkouts: list[str] = field(default_factory=list)
    #: When the agent's own health or smoke checks last talked to the app (epoch seconds), so
    #: their closed connections are not taken for a reviewer's (see ``activity``).
    app_probed_at: float | None = None
    #: No process or file of the app user's is known to be left (see ``cleanup``); False from
    #: the moment PR code may run until the next successful clean-up.
    clean: bool = False
    #: Why the last clean-up failed; the server is reported dirty while this is set.
    dirty: str | None = None


def path_in(workdir: Path) -> Path:
    return workdir / "state.json"


def load(workdir: Path) -> State:
    path = path_in(workdir)
    try:
        raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        app = raw.pop("app", None)
        failure = raw.pop("failure", None)
        return State(
            **raw,
            app=App(**app) if app else None,
            failure=Failure(**failure) if failure else None,
        )
    except FileNotFoundError:
        return State()
    except (OSError, ValueError, TypeError) as exc:
        log.warning("ignoring unreadable %s: %s", path, exc)
        return State()


def save(workdir: Path, state: State) -> None:
    path = path_in(workdir)
    temporary = path.with_suffix(".tmp")
    # It holds the environment's token: readable by the agent's user only, from the start.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        os.fchmod(file.fileno(), 0o600)  # a leftover .tmp keeps its old mode otherwise
        file.write(json.dumps(asdict(state), indent=2))
    os.replace(temporary, path)
