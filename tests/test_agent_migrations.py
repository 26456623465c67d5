"""The built-in SQL migrator and the app's database, on a real MariaDB as the PR's own user."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pymysql
import pytest
from sqlalchemy import make_url

from pullre.agent import deploy as agent_pass
from tests.agent_fixtures import (
    TOKEN,
    Agent,
    AssignPr,
    Box,
    FakeController,
    OriginRepo,
    pullre_toml,
)

CREATE = (
    "CREATE TABLE greeting (id INT PRIMARY KEY, message VARCHAR(100));\n"
    "INSERT INTO greeting VALUES (1, 'hello from the PR schema');\n"
    "CREATE TABLE audit (note VARCHAR(100));\n"
)
# Not idempotent on purpose: a second run would leave two audit rows.
UPDATE = (
    "UPDATE greeting SET message = 'hello again' WHERE id = 1;\n"
    "INSERT INTO audit VALUES ('0002 ran');\n"
)


def with_migrations(git_origin: OriginRepo) -> dict[str, str | None]:
    """A ``.pullre.toml`` using the built-in migrator, and ``0001_create.sql``."""
    toml = pullre_toml(git_origin.port) + '[migrations]\nsql_dir = "db/migrations"\n'
    return {".pullre.toml": toml, "db/migrations/0001_create.sql": CREATE}


def rows(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    url = make_url(database_url)
    connection = pymysql.connect(
        host=url.host, port=url.port or 3306, user=url.username, database=url.database
    )
    with connection, connection.cursor() as cursor:
        cursor.execute(sql)
        return list(cursor.fetchall())


Deploy = Callable[[dict[str, str | None]], str]


@pytest.fixture
def deploy(
    agent: Agent, fake_controller: FakeController, assign_pr: AssignPr, pr_database: dict[str, Any]
) -> Deploy:
    """Commits the files as PR #21's new head with the PR's database, runs one pass; the sha."""

    def run(files: dict[str, str | None]) -> str:
        sha = assign_pr(21, files, database=pr_database)
        fake_controller.clear()
        assert agent.run() == 0
        return sha

    return run


@pytest.mark.mysql
def test_migrations_apply_once_and_the_app_reads_its_schema(
    agent: Agent,
    fake_controller: FakeController,
    git_origin: OriginRepo,
    pr_database: dict[str, Any],
    mysql_database_url: str,
    deploy: Deploy,
) -> None:
    first = deploy(with_migrations(git_origin))

    assert ("migrate", "ok") in fake_controller.steps()
    assert "applied: 0001_create.sql" in fake_controller.step_log("migrate", "ok")
    assert agent.get(git_origin.port, "/row") == "hello from the PR schema"
    env = json.loads(agent.get(git_origin.port, "/env"))
    assert env["MYSQL_USER"] == pr_database["user"]
    assert env["MYSQL_DATABASE"] == pr_database["name"]

    second = deploy({"db/migrations/0002_update.sql": UPDATE})
    migrate_log = fake_controller.step_log("migrate", "ok")
    assert "already applied: 0001_create.sql" in migrate_log
    assert "applied: 0002_update.sql" in migrate_log
    assert agent.get(git_origin.port, "/row") == "hello again"
    assert agent.get(git_origin.port) == f"ok {second}"

    fake_controller.assignment = git_origin.assignment(
        21, second, database=pr_database, redeploy=True
    )
    assert agent.run() == 0  # a full redeploy of the same sha: nothing re-applied
    assert rows(mysql_database_url, "SELECT note FROM audit") == [("0002 ran",)]
    recorded = rows(
        mysql_database_url,
        "SELECT filename, checksum FROM pullre_schema_migrations ORDER BY filename",
    )
    assert [name for name, _ in recorded] == ["0001_create.sql", "0002_update.sql"]
    assert all(len(checksum) == 64 for _, checksum in recorded)
    assert first != second


@pytest.mark.mysql
def test_an_edited_applied_migration_fails_and_the_old_app_keeps_serving(
    agent: Agent,
    fake_controller: FakeController,
    git_origin: OriginRepo,
    mysql_database_url: str,
    deploy: Deploy,
) -> None:
    good = deploy(with_migrations(git_origin))
    pid = agent.app_pid()

    edited = CREATE.replace("hello from the PR schema", "edited after the fact")
    bad = deploy({"db/migrations/0001_create.sql": edited})

    assert fake_controller.steps()[-1] == ("migrate", "failed")
    text = fake_controller.step_log("migrate", "failed")
    assert "0001_create.sql" in text
    assert "changed since they were applied" in text
    assert agent.app_pid() == pid
    assert agent.get(git_origin.port) == f"ok {good}"
    assert agent.get(git_origin.port, "/row") == "hello from the PR schema"
    assert fake_controller.heartbeats()[-1]["deployed_sha"] == good
    assert good != bad
    assert rows(mysql_database_url, "SELECT COUNT(*) FROM pullre_schema_migrations") == [(1,)]


@pytest.mark.mysql
def test_a_failing_file_reports_the_client_error_and_keeps_earlier_files_recorded(
    agent: Agent,
    fake_controller: FakeController,
    git_origin: OriginRepo,
    pr_database: dict[str, Any],
    mysql_database_url: str,
    deploy: Deploy,
) -> None:
    deploy(
        {
            **with_migrations(git_origin),
            "db/migrations/0002_update.sql": UPDATE,
            "db/migrations/0003_broken.sql": "SELEKT * FROM nowhere;\n",
            "db/migrations/0004_never.sql": "INSERT INTO audit VALUES ('0004 ran');\n",
        }
    )

    assert fake_controller.steps()[-1] == ("migrate", "failed")
    text = fake_controller.step_log("migrate", "failed")
    assert "0003_broken.sql failed" in text
    assert "ERROR 1064" in text  # the client's own message
    assert pr_database["password"] not in text
    recorded = rows(
        mysql_database_url, "SELECT filename FROM pullre_schema_migrations ORDER BY filename"
    )
    assert recorded == [("0001_create.sql",), ("0002_update.sql",)]
    assert rows(mysql_database_url, "SELECT note FROM audit") == [("0002 ran",)]
    assert not list(agent.settings.workdir.glob("*.cnf"))  # the password file is gone


@pytest.mark.mysql
def test_a_migrate_command_runs_with_the_database_environment(
    agent: Agent,
    fake_controller: FakeController,
    git_origin: OriginRepo,
    deploy: Deploy,
) -> None:
    # The repository's own command line; the client reads the password from MYSQL_PWD.
    migrate = (
        'MYSQL_PWD="$MYSQL_PASSWORD" mariadb --no-defaults -h "$MYSQL_HOST" -P "$MYSQL_PORT" '
        '-u "$MYSQL_USER" "$MYSQL_DATABASE" -e "$SQL"'
    )
    toml = pullre_toml(git_origin.port, migrate=migrate) + (
        "[env]\n"
        'SQL = "CREATE TABLE greeting (id INT, message TEXT); '
        "INSERT INTO greeting VALUES (1, 'by command')\"\n"
    )
    deploy({".pullre.toml": toml})

    assert ("migrate", "ok") in fake_controller.steps(), fake_controller.steps()
    assert agent.get(git_origin.port, "/row") == "by command"


def test_migrations_run_as_the_app_user_and_never_read_the_agents_files(
    box: Box,
    fake_controller: FakeController,
    assign_pr: AssignPr,
    git_origin: OriginRepo,
    pr_database: dict[str, Any],
) -> None:
    # The client runs ``\!`` lines of a migration file as shell commands: as pullre-app here.
    marker = Path(tempfile.mkdtemp(prefix="pullre-whoami-", dir=box.root)) / "whoami"
    marker.parent.chmod(0o777)
    python = shutil.which("python3", path="/usr/bin:/bin") or "python3"
    toml = (
        f'[deploy]\nstart = ["{python}", "app.py"]\nport = {git_origin.port}\n'
        '[migrations]\nsql_dir = "db"\n'
    )
    files: dict[str, str | None] = {
        ".pullre.toml": toml,
        "db/0001_create.sql": CREATE + f"\\! id -un > {marker}\n",
    }
    settings = box.settings(fake_controller.url, TOKEN)
    assign_pr(22, files, database=pr_database)
    assert agent_pass.run_pass(settings, environ={}) == 0
    assert ("migrate", "ok") in fake_controller.steps()
    assert marker.read_text() == "pullre-app\n"

    # The build swaps a migration file for a symlink to the agent's ini (with its token).
    swap = f"ln -s {box.ini} db/0002_more.sql"
    build = f'[deploy]\nbuild = "{swap}"\n' + toml.split("\n", 1)[1]
    assign_pr(22, {".pullre.toml": build}, database=pr_database)
    fake_controller.clear()
    assert agent_pass.run_pass(settings, environ={}) == 0

    assert fake_controller.steps()[-1] == ("migrate", "failed")
    text = fake_controller.step_log("migrate", "failed")
    assert "cannot read a migration file" in text
    assert TOKEN not in text
