"""Setting, removing and listing a repository's secrets, and the values an assignment carries.

A change is recorded as an event that names the secret, never its value, and asks every
environment of the repository that holds a server for a redeploy (as the redeploy action does):
a running app keeps the environment it was started with, so only a new deploy gives it the change.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from pullre import events
from pullre.clock import Clock
from pullre.models import Environment, EnvironmentStatus, PullRequest, Repository, RepositorySecret
from pullre.secrets import cipher
from pullre.secrets.names import SecretError, check_name

log = logging.getLogger(__name__)

#: Longest value kept, in UTF-8 bytes: room for a PEM private key, not for a file.
MAX_VALUE_BYTES = 16 * 1024
#: Environments whose app runs (or is being deployed) with the old values.
REDEPLOYED = (EnvironmentStatus.READY, EnvironmentStatus.FAILED, EnvironmentStatus.DEPLOYING)


@dataclass(frozen=True)
class Readable:
    """What an assignment carries: the values that decrypt, and the names of those that do not."""

    values: dict[str, str] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)


def check_value(value: str) -> str:
    if not value:
        raise SecretError("the value is empty; to take a secret away, remove it")
    if "\0" in value:
        raise SecretError("the value contains a NUL character, which no environment can hold")
    if len(value.encode()) > MAX_VALUE_BYTES:
        raise SecretError(f"the value is longer than {MAX_VALUE_BYTES} bytes")
    return value


def listed(session: Session, repository: Repository) -> list[RepositorySecret]:
    """The repository's secrets by name; read only ``name``, ``set_at`` and ``set_by``."""
    return list(
        session.scalars(
            select(RepositorySecret)
            .where(RepositorySecret.repository_id == repository.id)
            .order_by(RepositorySecret.name)
        )
    )


def _find(session: Session, repository: Repository, name: str) -> RepositorySecret | None:
    return session.scalar(
        select(RepositorySecret).where(
            RepositorySecret.repository_id == repository.id, RepositorySecret.name == name
        )
    )


def set_secret(
    session: Session,
    repository: Repository,
    name: str,
    value: str,
    *,
    actor: str,
    secret_key: str,
    clock: Clock,
) -> int:
    """Create or replace ``name``; returns how many environments were asked to redeploy."""
    check_name(name)
    check_value(value)
    session.flush()  # the repository has its id
    secret = _find(session, repository, name)
    if secret is None:
        secret = RepositorySecret(repository_id=repository.id, name=name)
        session.add(secret)
    secret.ciphertext = cipher.encrypt(secret_key, repository.id, name, value)
    secret.set_at = clock()
    secret.set_by = actor[:100]
    redeploys = ask_redeploy(session, repository, clock)
    events.record(
        session,
        "secret.set",
        f"{repository.full_name}: secret {name} set by {actor}{_redeploying(redeploys)}",
        repository_id=repository.id,
        actor=actor,
        name=name,
    )
    return redeploys


def remove_secret(
    session: Session, repository: Repository, name: str, *, actor: str, clock: Clock
) -> int:
    """Remove ``name`` (SecretError when there is none); returns the redeploys asked for."""
    secret = _find(session, repository, name)
    if secret is None:
        raise SecretError(f"{repository.full_name} has no secret {name[:100]!r}")
    session.delete(secret)
    redeploys = ask_redeploy(session, repository, clock)
    events.record(
        session,
        "secret.removed",
        f"{repository.full_name}: secret {name} removed by {actor}{_redeploying(redeploys)}",
        repository_id=repository.id,
        actor=actor,
        name=name,
    )
    return redeploys


def _redeploying(count: int) -> str:
    if count == 0:
        return ""
    return f"; {count} environment{'s' if count != 1 else ''} will redeploy"


def ask_redeploy(session: Session, repository: Repository, clock: Clock) -> int:
    """Ask every environment of the repository that serves an app to deploy it again."""
    environments = session.scalars(
        select(Environment)
        .join(PullRequest, Environment.pull_request_id == PullRequest.id)
        .where(
            PullRequest.repository_id == repository.id,
            Environment.status.in_(REDEPLOYED),
            Environment.server_id.is_not(None),
        )
    ).all()
    for environment in environments:
        environment.deploy_requested_at = clock()
    return len(environments)


def readable(session: Session, repository_id: int, secret_key: str) -> Readable:
    """The repository's values for an assignment; one that does not decrypt is named, not fatal."""
    found = Readable()
    rows = session.scalars(
        select(RepositorySecret)
        .where(RepositorySecret.repository_id == repository_id)
        .order_by(RepositorySecret.name)
    )
    for row in rows:
        try:
            found.values[row.name] = cipher.decrypt(
                secret_key, repository_id, row.name, row.ciphertext
            )
        except cipher.Unreadable as exc:
            # Debug only: agents in --loop poll this every second; the deploy fails naming it.
            log.debug("repository %d: %s", repository_id, exc)
            found.unreadable.append(row.name)
    return found
