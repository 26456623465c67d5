"""The pool as admins manage it: registering servers, their agent tokens, start/stop by hand.

Shared by the admin UI and the CLI so both refuse the same things with the same words. Every
change writes an event; callers commit.

Agent tokens are ``secrets.token_urlsafe(32)`` (256 random bits) and only their SHA-256 is
stored. A slow KDF (scrypt, bcrypt) protects *guessable* secrets such as passwords from offline
guessing; a 256-bit random token cannot be guessed whatever the hash speed, so a fast hash loses
nothing. It wins a lot: the hash is deterministic, so the agent API finds a server by its token
in one indexed equality lookup instead of trying a salted KDF against every server.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pullre import events
from pullre.ec2.port import Ec2, Ec2Error
from pullre.models import (
    ACTIVE_ENVIRONMENT_STATUSES,
    Environment,
    PullRequest,
    Repository,
    Server,
)
from pullre.servers import power_rules

#: EC2's instance id shape: "i-" and 8 (old) or 17 (current) hex digits.
INSTANCE_ID = re.compile(r"^i-[0-9a-f]{8,17}$")
TOKEN_BYTES = 32
#: token_urlsafe(32) is 43 characters; anything much longer is not ours and is not hashed.
_MAX_TOKEN_LENGTH = 128
#: Column sizes of ``servers.staging_url`` and ``servers.name``.
_URL_LENGTH = 255
_NAME_LENGTH = 100

#: A validator of typed-in text: returns it cleaned or raises ValueError saying what is wrong.
Check = Callable[[str], str]
#: ``start_server`` / ``stop_server``.
Action = Callable[[Session, Ec2, Server], str]


class ServerError(Exception):
    """A refused or failed pool action; the message is the one line shown to the admin."""


def check_instance_id(value: str) -> str:
    value = value.strip()
    if not INSTANCE_ID.fullmatch(value):
        raise ValueError(f"{value!r} is not an EC2 instance id (i- and 8 to 17 hex digits)")
    return value


def check_staging_url(value: str) -> str:
    """Only http(s) URLs with a host: the page renders it as a link, so no ``javascript:``."""
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"{value!r} is not an http:// or https:// URL")
    if len(value) > _URL_LENGTH:
        raise ValueError(f"the staging URL is longer than {_URL_LENGTH} characters")
    return value


def parse_tag_filter(value: str) -> tuple[str, str]:
    """``Key=Value`` → (key, value); the value may be empty or contain '='."""
    key, equals, tag_value = value.partition("=")
    if not equals or not key.strip():
        raise ValueError(f"tag filter {value!r} is not Key=Value")
    return key.strip(), tag_value.strip()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _new_token(server: Server) -> str:
    token = secrets.token_urlsafe(TOKEN_BYTES)
    server.agent_token_hash = hash_token(token)
    return token


def find_server_by_token(session: Session, token: str) -> Server | None:
    """The pool server an agent token belongs to, or None (unknown, rotated or removed).

    The lookup is by hash equality; ``compare_digest`` then checks the stored hash in constant
    time, so a case-insensitive database collation can never make a near-match count.
    """
    if not token or len(token) > _MAX_TOKEN_LENGTH:
        return None
    digest = hash_token(token)
    server = session.scalar(
        select(Server).where(Server.agent_token_hash == digest, Server.in_pool.is_(True))
    )
    if server is None or server.agent_token_hash is None:
        return None
    if not hmac.compare_digest(server.agent_token_hash, digest):
        return None
    return server


def register_server(
    session: Session, instance_id: str, staging_url: str, name: str = ""
) -> tuple[Server, str]:
    """Add an instance to the pool; returns the server and its agent token (shown once).

    A server removed earlier keeps its row (its events and past environments point at it), so
    registering that instance again brings the row back with a fresh token.
    """
    instance_id = check_instance_id(instance_id)
    staging_url = check_staging_url(staging_url)
    name = name.strip()[:_NAME_LENGTH]
    server = session.scalar(select(Server).where(Server.instance_id == instance_id))
    if server is not None and server.in_pool:
        raise ServerError(f"{instance_id} is already registered")
    if server is None:
        server = Server(instance_id=instance_id)
    server.name, server.staging_url, server.in_pool = name, staging_url, True
    server.last_error = None
    # Office hours are for machines outside the pool; in it, the server follows its PRs.
    server.schedule_id, server.schedule_state = None, None
    token = _new_token(server)
    session.add(server)
    try:
        # A savepoint, so a concurrent registration of the same id becomes a refusal and the
        # caller's session stays usable.
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise ServerError(f"{instance_id} is already registered") from None
    events.record(
        session, "server.registered", f"{_label(server)} added to the pool", server=server
    )
    return server, token


def rotate_token(session: Session, server: Server) -> str:
    """Give the server a new agent token; the old one stops working at once."""
    token = _new_token(server)
    events.record(session, "server.token", f"{_label(server)}: agent token rotated", server=server)
    return token


#: How the Servers page says who runs PR code on a box (``Server.runs_as``).
RUNS_AS_TEXT = {
    "app_user": "runs PR code as its app user",
    "same_user": "runs PR code as its own user",
    "refused": "refuses to run PR code (no app user)",
}


def mark_clean(session: Session, server: Server, by: str) -> None:
    """An admin looked at a dirty server (its agent could not clean up after a PR): it may
    take pull requests again."""
    if server.dirty_reason is None:
        return
    events.record(
        session,
        "server.clean",
        f"{_label(server)} marked clean by {by} (was: {server.dirty_reason[:200]})",
        server=server,
    )
    server.dirty_reason = None


def holder(session: Session, server: Server) -> Environment | None:
    return session.scalar(
        select(Environment).where(
            Environment.server_id == server.id,
            Environment.status.in_(ACTIVE_ENVIRONMENT_STATUSES),
        )
    )


def remove_server(session: Session, server: Server) -> None:
    """Take the server out of the pool and void its token; refused while a PR holds it."""
    if holder(session, server) is not None:
        raise ServerError(f"{_label(server)} is held by a pull request; release it first")
    server.in_pool = False
    server.agent_token_hash = None
    events.record(
        session, "server.removed", f"{_label(server)} removed from the pool", server=server
    )


def start_server(session: Session, ec2: Ec2, server: Server) -> str:
    """Start the instance by hand; returns the state EC2 reports right after."""
    return _change(session, ec2, server, "start")


def stop_server(session: Session, ec2: Ec2, server: Server) -> str:
    """Stop the instance by hand; refused while an active environment holds it, because the
    reconciler would only start it again for that PR."""
    return _change(session, ec2, server, "stop")


def _change(session: Session, ec2: Ec2, server: Server, action: str) -> str:
    """Look at the instance first: acting while EC2 moves it on would race that move."""
    label = _label(server)
    environment = holder(session, server)
    held_by = f"an active environment ({environment.status.value})" if environment else None
    try:
        info = ec2.describe([server.instance_id]).get(server.instance_id)
        if info is None:
            raise ServerError(f"EC2 does not know {server.instance_id} (terminated?)")
        server.observed_state = info.state
        refused = power_rules.why_not(action, label, info.state, held_by)
        if refused is not None:
            raise ServerError(refused)
        state = ec2.start(server.instance_id) if action == "start" else ec2.stop(server.instance_id)
    except Ec2Error as exc:
        server.last_error = str(exc)
        events.record(session, "error", f"{label}: {action} failed: {exc}", server=server)
        raise ServerError(f"EC2 refused to {action} {label}: {exc}") from exc
    server.observed_state = state
    server.last_error = None
    events.record(session, f"server.{action}", f"{label} {state} (by an admin)", server=server)
    return state


def _label(server: Server) -> str:
    return f"{server.name} ({server.instance_id})" if server.name else server.instance_id


# --- the list view ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerRow:
    """One pool server as the admin page and ``server list`` show it."""

    server: Server
    #: ``owner/name#number`` of the PR whose active environment holds it; None when free.
    held_by: str | None
    environment_status: str | None

    @property
    def held(self) -> bool:
        return self.held_by is not None


def server_rows(session: Session) -> list[ServerRow]:
    """Every pool server with the PR holding it, in one query whatever the pool size."""
    rows = session.execute(
        select(Server, Environment, PullRequest.number, Repository.owner, Repository.name)
        .outerjoin(
            Environment,
            (Environment.server_id == Server.id)
            & Environment.status.in_(ACTIVE_ENVIRONMENT_STATUSES),
        )
        .outerjoin(PullRequest, PullRequest.id == Environment.pull_request_id)
        .outerjoin(Repository, Repository.id == PullRequest.repository_id)
        .where(Server.in_pool.is_(True))
        .order_by(Server.name, Server.instance_id)
    ).all()
    return [
        ServerRow(
            server=server,
            held_by=f"{owner}/{name}#{number}" if environment is not None else None,
            environment_status=environment.status.value if environment is not None else None,
        )
        for server, environment, number, owner, name in rows
    ]


def registered_instance_ids(session: Session) -> dict[str, str]:
    """Instance id → server name of every pool server, to mark EC2 instances already in."""
    rows = session.execute(
        select(Server.instance_id, Server.name).where(Server.in_pool.is_(True))
    ).all()
    return {row.instance_id: row.name for row in rows}


def age(then: datetime | None, now: datetime) -> str:
    """A short, human "how long ago" for heartbeats; "never" when there was none."""
    if then is None:
        return "never"
    seconds = max(0, int((now - then) / timedelta(seconds=1)))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"
