"""An agent waiting for its assignment to change, so a push reaches its box within a second.

An agent in ``--loop`` passes the digest it acts on as ``known``: the answer comes as soon as
the assignment differs (a push, a redeploy, a wake, a reset, a release), else after ``wait``
seconds. The wait watches the database, polling it once a second in a short read of its own, so
a change made by any controller replica reaches an agent waiting on another. Waiting requests
hold a server thread each, so at most ``[controller] agent_wait_slots`` wait at once; past that
the answer comes at once with ``retry_after`` seconds for the agent to sleep before it asks
again, and pages never queue behind agents.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from typing import Any

from flask import current_app
from sqlalchemy.orm import Session, sessionmaker

from pullre.config import Settings
from pullre.environments import deploys
from pullre.models import Server
from pullre.web import fetch_tokens
from pullre.web.db_session import READ_FACTORY_KEY

#: The longest an assignment request may wait for a change.
MAX_WAIT_S = 60.0
#: How often a waiting request looks at the database.
POLL_INTERVAL_S = 1.0
#: What an agent that found no free wait slot is told to sleep before asking again.
NO_SLOT_RETRY_S = 5
#: ``app.extensions`` key of the semaphore bounding waiting assignment requests.
WAIT_SLOTS_KEY = "pullre.agent_wait_slots"
#: Assignment members that change without the work changing (a renewed fetch token...).
_ONE_OFF = ("environment_token", "fetch_token")

Found = dict[str, Any] | None


def seconds(raw: str) -> float:
    """``?wait=`` as seconds; ValueError with the words for a 400."""
    try:
        wait = float(raw)
    except ValueError:
        raise ValueError("'wait' must be a number of seconds") from None
    if not 0 <= wait <= MAX_WAIT_S:
        raise ValueError(f"'wait' must be between 0 and {MAX_WAIT_S} seconds")
    return wait


def answer(
    session: Session, server: Server, *, presented: str | None, known: str, wait: float
) -> tuple[Found, str, int | None]:
    """(assignment, its digest, retry_after): at once when it differs from ``known`` or there
    is no wait slot free, else once it changes or ``wait`` seconds have passed."""
    found = current(session, server, presented)
    if found is not None and found["environment_token"] is not None:
        session.commit()  # only the hash is kept; the token itself is in this answer only
    known_now = digest(found)
    if not (
        wait > 0 and known_now == known and (found is None or found["environment_token"] is None)
    ):
        return found, known_now, None
    session.commit()  # hold no transaction while waiting
    slots: threading.BoundedSemaphore = current_app.extensions[WAIT_SLOTS_KEY]
    if not slots.acquire(blocking=False):
        return found, known_now, NO_SLOT_RETRY_S
    try:
        changed = _wait_for_change(server.id, presented, known, time.monotonic() + wait)
    finally:
        slots.release()
    if not changed:
        return found, known_now, None
    found = current(session, server, presented)
    if found is not None and found["environment_token"] is not None:
        session.commit()
    return found, digest(found), None


def current(
    session: Session, server: Server, presented: str | None, *, fetch_token: bool = True
) -> Found:
    """The server's assignment now; ``fetch_token=False`` never asks GitHub for one (the wait's
    polls, whose digest leaves it out anyway)."""
    settings: Settings = current_app.extensions["pullre.settings"]
    return deploys.assignment(
        session,
        server,
        staging_mysql_url=settings.staging_mysql.url,
        secret_key=current_app.config["SECRET_KEY"],
        github_api_url=settings.github.api_url,
        presented_token=presented,
        fetch_token=fetch_tokens.for_repository if fetch_token else None,
    )


def digest(found: Found) -> str:
    """What the agent acts on, without the one-off tokens: equal digests, nothing to do."""
    kept = None if found is None else {k: v for k, v in found.items() if k not in _ONE_OFF}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:32]


def _wait_for_change(server_id: int, presented: str | None, known: str, deadline: float) -> bool:
    """Poll in short read transactions until the digest differs from ``known`` or time is up."""
    read_factory: sessionmaker[Session] = current_app.extensions[READ_FACTORY_KEY]
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(POLL_INTERVAL_S, left))
        with read_factory() as reader, reader.no_autoflush:
            server = reader.get(Server, server_id)
            if server is None:
                return True
            found = current(reader, server, presented, fetch_token=False)
            # A token that would be issued now is news as well (the stay changed under it).
            issued = found is not None and found["environment_token"] is not None
            reader.rollback()  # drop what assignment() set in memory; nothing is written
        if issued or digest(found) != known:
            return True
    return False
