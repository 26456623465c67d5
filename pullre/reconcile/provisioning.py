"""The PR's own database: cloned when it gets a server, dropped when it gives the server back.

A clone that fails is dropped by the staging adapter itself and simply tried again by the next
pass; the error stays on the environment (and so on the PR page) until a clone succeeds.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from pullre import events
from pullre.clock import Clock
from pullre.environments.deploys import (
    SERVING,
    database_password,
    rotate_database_password,
    source_schema,
)
from pullre.models import Environment
from pullre.staging_db.names import schema_name
from pullre.staging_db.port import StagingDatabase, StagingDatabaseError

log = logging.getLogger(__name__)


def environments_needing_a_schema(session: Session) -> list[Environment]:
    return list(
        session.scalars(
            select(Environment)
            .where(
                Environment.status.in_(SERVING),
                Environment.server_id.is_not(None),
                Environment.schema_ready_at.is_(None),
            )
            .order_by(Environment.assigned_at, Environment.id)
        )
    )


def provision(
    session: Session,
    staging: StagingDatabase,
    environment: Environment,
    *,
    secret_key: str,
    clock: Clock,
) -> str | None:
    """Clone the PR's schema and (re)create its user; the error message when that failed.

    Each time (a new stay, "reset data", a retry) the user gets a new password: the agent only
    learns it once the schema is ready, and sessions opened with the old one are ended.
    """
    pull = environment.pull_request
    repository = pull.repository
    source = source_schema(session, pull, repository)
    if source is None:
        return _failed(
            session,
            environment,
            f"no source schema for #{pull.number}: set a base schema on {repository.full_name}"
            f" or register {pull.author_login}'s own schema",
        )
    target = environment.schema_name or schema_name(
        repository.id, pull.number, staging.schema_prefix
    )
    environment.schema_name = target
    rotate_database_password(session, environment)
    password = database_password(secret_key, environment)
    session.commit()  # no transaction stays open while the clone runs for minutes
    try:
        result = staging.reset(source, target)
        staging.create_user(target, password=password)
    except StagingDatabaseError as exc:
        return _failed(session, environment, f"cloning {source} into {target} failed: {exc}")
    environment.schema_ready_at = clock()
    if environment.last_error and environment.last_error.startswith(("cloning", "no source")):
        environment.last_error = None
    events.record(
        session,
        "schema_cloned",
        f"#{pull.number}: {source} cloned into {target}",
        pull_request=pull,
        source=source,
        target=target,
        seconds=round(result.seconds, 2),
    )
    session.commit()
    return None


def drop(session: Session, staging: StagingDatabase, environment: Environment) -> str | None:
    """Drop the schema and its user; the error message when the staging server refused."""
    if environment.schema_name is None:
        return None
    session.commit()
    try:
        staging.drop(environment.schema_name)
    except StagingDatabaseError as exc:
        return _failed(session, environment, f"dropping {environment.schema_name} failed: {exc}")
    environment.schema_ready_at = None
    events.record(
        session,
        "schema_dropped",
        f"#{environment.pull_request.number}: {environment.schema_name} dropped",
        pull_request=environment.pull_request,
    )
    return None


def _failed(session: Session, environment: Environment, message: str) -> str:
    session.rollback()
    if environment.last_error != message:  # one event per new problem, not one per pass
        events.record(session, "error", message, pull_request=environment.pull_request)
    environment.last_error = message
    session.commit()
    log.warning("%s", message)
    return message
