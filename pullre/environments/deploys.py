"""What a staging server is asked to run, and what its agent's reports do to the environment.

The agent drives the deploy; the controller only follows its reports: the first step of a deploy
turns the environment ``deploying``, a failed step ``failed`` (with the step's log as the
error), and a healthy app ``ready``. Reports for an environment the server no longer holds are
refused, so a slow agent cannot flip the state of the PR that now has its server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pullre import events
from pullre.clock import Clock
from pullre.environments import step_retention, tokens
from pullre.github.port import web_url
from pullre.models import (
    DeployStep,
    Environment,
    EnvironmentStatus,
    GithubUser,
    PullRequest,
    Repository,
    Server,
    StepStatus,
)
from pullre.secret_key import derived_password
from pullre.secrets import store as secret_store
from pullre.staging_db.names import user_name
from pullre.trust.approval import awaiting_approval, is_outsider

#: Steps an agent reports, in the order a deploy runs them.
STEPS = ("fetch", "checkout", "build", "migrate", "start", "health", "smoke")
#: Environments whose server should run the PR's app.
SERVING = frozenset(
    {
        EnvironmentStatus.PROVISIONING,
        EnvironmentStatus.DEPLOYING,
        EnvironmentStatus.READY,
        EnvironmentStatus.FAILED,
    }
)
LOG_TAIL_BYTES = 64 * 1024


class NotYourEnvironment(Exception):
    """The report names an environment this server does not (or no longer) hold."""


@dataclass(frozen=True)
class DatabaseAccess:
    host: str
    port: int
    user: str
    password: str
    name: str


def database_password(secret_key: str, environment: Environment) -> str:
    assert environment.schema_name is not None
    purpose = f"mysql:{environment.schema_name}:{environment.credentials_generation}"
    return derived_password(secret_key, purpose)


def rotate_database_password(session: Session, environment: Environment) -> None:
    """Move the environment to a generation no stay of its PR has used, so its derived MySQL
    password is new: code of an earlier stay (or from before "reset data") knows the old one.

    Counted over the PR's stays because each stay starts at 0 and the schema (so the derivation's
    other input) is the same for every stay of a PR.
    """
    highest = session.scalar(
        select(func.max(Environment.credentials_generation)).where(
            Environment.pull_request_id == environment.pull_request_id
        )
    )
    environment.credentials_generation = max(highest or 0, environment.credentials_generation) + 1


def source_schema(session: Session, pull: PullRequest, repository: Repository) -> str | None:
    """The author's own registered schema, else the repository's base schema, else None."""
    own = session.scalar(
        select(GithubUser.source_schema).where(GithubUser.login == pull.author_login)
    )
    return own or repository.base_schema


def clone_url(repository: Repository, github_api_url: str) -> str:
    if repository.clone_url:
        return repository.clone_url
    return f"{web_url(github_api_url)}/{repository.owner}/{repository.name}.git"


def serving_environment(session: Session, server: Server) -> Environment | None:
    return session.scalar(
        select(Environment).where(
            Environment.server_id == server.id, Environment.status.in_(SERVING)
        )
    )


def assignment(
    session: Session,
    server: Server,
    *,
    staging_mysql_url: str,
    secret_key: str,
    github_api_url: str,
    presented_token: str | None = None,
    fetch_token: Callable[[Repository], dict[str, Any] | None] | None = None,
) -> dict[str, Any] | None:
    """The PR this server should run, or None (the agent then stops any app).

    While the PR's schema is still being cloned the answer is None too: an app must not start
    against half a database.

    ``presented_token`` is the environment token the agent holds: when it is this environment's
    current one the answer's ``environment_token`` is None (keep it); otherwise (a new stay, a
    lost token) a new one is made and given in this answer only. The caller commits.

    ``fetch_token`` gives the answer's ``fetch_token`` member (``fetch_tokens.member``), or None.
    """
    environment = serving_environment(session, server)
    if environment is None:
        return None
    pull = environment.pull_request
    repository = pull.repository
    if awaiting_approval(pull, repository):
        return None  # pushed past its approval: nothing unapproved runs, even before a pass
    database = None
    if staging_mysql_url:
        if environment.schema_ready_at is None or environment.schema_name is None:
            return None
        parts = urlsplit(staging_mysql_url)
        database = {
            "host": parts.hostname or "localhost",
            "port": parts.port or 3306,
            "user": user_name(environment.schema_name),
            "password": database_password(secret_key, environment),
            "name": environment.schema_name,
        }
    issued = None if tokens.holds(environment, presented_token) else tokens.issue(environment)
    # A fork's or an outsider's code never gets the repository's secrets, approved or not (as
    # GitHub Actions withholds them from fork PRs): an approval says the code may run, not
    # that it may read the team's keys.
    secrets = (
        secret_store.Readable()
        if is_outsider(pull)
        else secret_store.readable(session, repository.id, secret_key)
    )
    return {
        "environment_id": environment.id,
        "environment_token": issued,
        "repository": repository.full_name,
        "clone_url": clone_url(repository, github_api_url),
        "fetch_token": None if fetch_token is None else fetch_token(repository),
        "pr_number": pull.number,
        "head_sha": pull.head_sha,
        "head_ref": pull.head_ref,
        "redeploy": environment.deploy_requested_at is not None,
        # Someone asked for the deep tier: the agent runs it against the app as it runs now.
        "smoke": "deep" if environment.smoke_requested_at is not None else "fast",
        "database": database,
        # For the app's environment only; the agent masks each value in the logs it sends.
        "secrets": secrets.values,
        "unreadable_secrets": secrets.unreadable,  # the deploy fails naming them
        "defaults": {
            # The server's own port when an admin set one, else the box's [agent] port, else
            # the agent's default (8000); the repository's .pullre.toml [deploy] port wins.
            "port": server.app_port,
            "health_path": None,  # the box's [agent] health_path, else "/"
            "start": None,
            "migrate": None,
            "build": None,
        },
    }


def record_step(
    session: Session,
    server: Server,
    *,
    environment_id: int,
    head_sha: str,
    step: str,
    status: StepStatus,
    log: str,
    clock: Clock,
    details: dict[str, Any] | None = None,
) -> Environment:
    """Store one step report and move the environment's status along.

    ``details`` are the step's structured results (the smoke step's, already validated against
    ``pullre.smoke.runner``'s shape by the API). A failed fast tier fails the environment like any
    other step: it is the check that this deploy works. The deep tier runs on demand against an app
    that is already serving, so its failure is shown as results but leaves the environment
    as it was; its final report answers the pending request. A smoke step "running" never moves
    the status either: the app answered its health check and is ready while checks run.
    """
    environment = session.get(Environment, environment_id)
    if (
        environment is None
        or environment.server_id != server.id
        or environment.status not in SERVING
    ):
        raise NotYourEnvironment(f"environment {environment_id} is not served by this server")
    tail = log.encode()[-LOG_TAIL_BYTES:].decode(errors="replace")
    session.add(
        DeployStep(
            environment_id=environment.id,
            head_sha=head_sha,
            step=step,
            status=status,
            log_tail=tail,
            details=details,
            reported_at=clock(),
        )
    )
    session.flush()
    step_retention.prune(session, environment.id)
    pull = environment.pull_request
    deep = step == "smoke" and (details or {}).get("tier") == "deep"
    if step == "smoke" and status is not StepStatus.RUNNING and (deep or details is None):
        environment.smoke_requested_at = None  # deep results, or none to give: answered
    if deep or (step == "smoke" and status is StepStatus.RUNNING):
        if deep and status is StepStatus.FAILED:
            events.record(
                session,
                "smoke_failed",
                f"#{pull.number} deep smoke checks failed on {head_sha[:7]}",
                pull_request=pull,
                server=server,
            )
        return environment
    if step == STEPS[0] and status is StepStatus.RUNNING:
        environment.deploy_requested_at = None  # this deploy answers the request
        environment.last_error = None
        events.record(
            session,
            "deploying",
            f"#{pull.number} deploying {head_sha[:7]}",
            pull_request=pull,
            server=server,
        )
    if status is StepStatus.FAILED:
        environment.status = EnvironmentStatus.FAILED
        # The end of a log says why it failed; keep that end when cutting it short.
        last_lines = "\n".join(tail.strip().splitlines()[-20:])[-3900:]
        environment.last_error = f"{step} failed: {last_lines}"
        events.record(
            session,
            "deploy_failed",
            f"#{pull.number} {step} failed on {head_sha[:7]}",
            pull_request=pull,
            server=server,
            step=step,
        )
    elif step == "health" and status is StepStatus.OK:
        now = clock()
        environment.status = EnvironmentStatus.READY
        environment.ready_at = now
        environment.deployed_sha = head_sha
        environment.deployed_at = now
        server.deployed_sha = head_sha
        events.record(
            session,
            "ready",
            f"#{pull.number} ready at {head_sha[:7]}",
            pull_request=pull,
            server=server,
        )
    elif status is StepStatus.RUNNING and environment.status is not EnvironmentStatus.DEPLOYING:
        environment.status = EnvironmentStatus.DEPLOYING
    return environment


def record_heartbeat(
    session: Session,
    server: Server,
    *,
    agent_version: str,
    deployed_sha: str | None,
    clock: Clock,
    environment_id: int | None = None,
    app_in_use: bool | None = None,
    runs_as: str | None = None,
    dirty: str | None = None,
) -> Environment | None:
    """Note the agent's pass; when it saw clients on the app, that is the environment's activity.

    ``runs_as`` (who runs PR code on the box) is kept as last said. ``dirty`` (why the agent
    could not clean up after a PR) marks the server dirty; a later heartbeat without it does
    not clear the mark, an admin does (``servers.registry.mark_clean``).

    ``app_in_use`` (None from agents that cannot tell, or too old to say) touches only the
    environment this server serves now, and only when the agent speaks of that one: never a
    sleeping or released one, nor the next PR's from a late report about the previous app. No
    event is recorded: a reviewer's session would write one a minute. Returns the environment
    touched, if any.
    """
    server.last_heartbeat = clock()
    server.agent_version = agent_version[:40]
    server.deployed_sha = deployed_sha
    if runs_as is not None:
        server.runs_as = runs_as[:20]
    if dirty:
        if server.dirty_reason is None:
            events.record(
                session,
                "server.dirty",
                f"{server.instance_id} is dirty: {dirty[:300]}",
                server=server,
            )
        server.dirty_reason = dirty[:2000]
    if app_in_use is not True or environment_id is None:
        return None
    environment = serving_environment(session, server)
    if environment is None or environment.id != environment_id:
        return None
    # As ``sleep.touch`` does, for this server's environment rather than the PR's newest.
    environment.last_activity_at = clock()
    environment.expiry_warned_at = None
    return environment
