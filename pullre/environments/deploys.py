"""What a staging server is asked to run: its assignment, with the PR's database access.

What the agent's reports then do to the environment is :mod:`pullre.environments.agent_reports`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pullre.environments import tokens
from pullre.github.port import web_url
from pullre.models import (
    Environment,
    EnvironmentStatus,
    GithubUser,
    PullRequest,
    Repository,
    Server,
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
