"""The environment every command of a deploy sees (build, migrate, the app itself).

The box's own environment minus the agent's settings (the PR's code must not read the agent
token from ``PULLRE_AGENT_TOKEN``), then the repository's ``[env]``, then its secrets (set by
admins on the controller, so they win over what is committed), then what pullre knows — last, so a
repository cannot point its app at another PR's database by accident.
"""

from __future__ import annotations

from collections.abc import Mapping

from pullre.agent.assignment import Assignment
from pullre.agent.repo_config import RepoConfig


def command_environ(
    base: Mapping[str, str], config: RepoConfig, assignment: Assignment
) -> dict[str, str]:
    env = {key: value for key, value in base.items() if not key.startswith("PULLRE_AGENT_")}
    env.update(config.env)
    env.update(assignment.secrets)
    env.update(
        PULLRE_PR_NUMBER=str(assignment.pr_number),
        PULLRE_SHA=assignment.head_sha,
        PORT=str(config.port),
    )
    database = assignment.database
    if database is not None:
        env.update(
            DATABASE_URL=database.url,
            MYSQL_HOST=database.host,
            MYSQL_PORT=str(database.port),
            MYSQL_USER=database.user,
            MYSQL_PASSWORD=database.password,
            MYSQL_DATABASE=database.name,
        )
    return env
