"""The README's reference says what the code does: its .pullre.toml examples load as written,
its tables name exactly the keys and variables the agent reads and sets, its IAM policy allows
exactly the EC2 calls the adapter makes, and its MariaDB GRANT is enough for a real clone and
drop (run here as written, on a fresh account)."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path
from typing import Any

import pymysql
from sqlalchemy import make_url

from pullre.agent import repo_config
from pullre.agent import settings as agent_settings
from pullre.agent.assignment import Assignment, Database, Defaults
from pullre.agent.environment import command_environ
from pullre.agent.settings import AgentSettings
from pullre.staging_db.database import PyMysqlStagingDatabase
from pullre.staging_db.names import quote_identifier, schema_name

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
BOX = AgentSettings(controller_url="http://c", token="t", workdir=Path("/w"))


def section(title: str) -> str:
    start = README.index(f"\n### {title}\n")
    end = README.find("\n## ", start + 1)
    following = README.find("\n### ", start + 1)
    return README[start : min(x for x in (end, following) if x != -1)]


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.DOTALL)


def first_column(text: str) -> set[str]:
    """The backticked names in the first column of a markdown table."""
    names: set[str] = set()
    for row in re.findall(r"^\| (`[^|]*`) \|", text, re.MULTILINE):
        names.update(re.findall(r"`([^`]+)`", row))
    return names


def test_the_toml_examples_load_as_the_agent_reads_them() -> None:
    django, node = blocks(section("`.pullre.toml`"), "toml")
    config = repo_config.load(django.encode(), Defaults(), BOX)
    assert config.start == (".venv/bin/gunicorn", "locallibrary.wsgi", "--bind", "127.0.0.1:8000")
    assert config.build is not None
    assert config.build[:2] == ("sh", "-c")
    assert (config.port, config.health_path, config.health_timeout) == (8000, "/catalog/", 90)
    assert config.env["DJANGO_DEBUG"] == "false"
    assert [c.name for c in config.smoke if c.spec is not None] == [
        "catalog page",
        "app smoke tests",
    ]
    config = repo_config.load(node.encode(), Defaults(), BOX)
    assert (config.start, config.migrate, config.sql_dir) == (
        ("node", "server.js"),
        None,
        "db/migrations",
    )
    assert (config.port, config.health_path, config.env) == (
        3000,
        "/healthz",
        {"NODE_ENV": "production"},
    )
    assert all(check.spec is not None for check in config.smoke)


def test_the_toml_table_names_every_key_the_agent_reads() -> None:
    documented = first_column(section("`.pullre.toml`"))
    expected = {f"[deploy] {key}" for key in repo_config._DEPLOY_KEYS}
    expected |= {f"[migrations] {key}" for key in repo_config._MIGRATION_KEYS}
    expected |= {"[env]", "[[smoke]]"}
    assert documented == expected


def test_the_defaults_said_are_the_agent_s() -> None:
    bare = repo_config.load(None, Defaults(), BOX)
    assert (bare.port, bare.health_path, bare.health_timeout) == (8000, "/", 60)
    text = section("`.pullre.toml`")
    assert "else `8000`" in text
    assert "else `60`" in text


def test_the_variables_table_is_what_the_app_gets() -> None:
    database = Database("db.internal", 3306, "pr_3_42", "p@ss", "pr_3_42")
    assignment = Assignment(
        3, "acme/shop", "https://x/a.git", 42, "a" * 40, "f", False, database, Defaults()
    )
    config = repo_config.load(b'[env]\nMYSQL_HOST = "elsewhere"\n', Defaults(), BOX)
    env = command_environ({"PULLRE_AGENT_TOKEN": "secret", "HOME": "/h"}, config, assignment)
    assert set(env) - {"HOME"} == first_column(section("What the app receives"))
    assert env["MYSQL_HOST"] == "db.internal"  # pullre's own win over [env]
    assert env["DATABASE_URL"] == "mysql://pr_3_42:p%40ss@db.internal:3306/pr_3_42"
    assert "PULLRE_AGENT_TOKEN" not in env


def test_the_agent_ini_table_names_every_key(tmp_path: Path) -> None:
    documented = first_column(section("The agent's ini"))
    keys = set(agent_settings.REQUIRED + agent_settings.OPTIONAL)
    assert documented == keys
    [example] = blocks(section("The agent's ini"), "ini")
    path = tmp_path / "pullre-agent.ini"
    path.write_text(example, encoding="utf-8")
    loaded = agent_settings.load(path, {})
    assert (loaded.controller_url, loaded.port) == ("https://pullre.example.com", 8000)


def test_the_iam_policy_allows_exactly_the_ec2_calls_pullre_makes() -> None:
    [policy_text] = blocks(section("IAM policy for the controller"), "json")
    policy = json.loads(policy_text)
    allowed: dict[str, Any] = {}
    for statement in policy["Statement"]:
        actions = statement["Action"]
        for action in [actions] if isinstance(actions, str) else actions:
            allowed[action] = statement
    source = (ROOT / "pullre" / "ec2" / "boto3_adapter.py").read_text(encoding="utf-8")
    calls = set(re.findall(r"self\._client\.(\w+)\(", source))
    calls |= set(re.findall(r'get_paginator\("(\w+)"\)', source))
    called = {"ec2:" + "".join(part.title() for part in call.split("_")) for call in calls}
    assert called - {"ec2:GetPaginator"} == set(allowed)
    assert allowed["ec2:DescribeInstances"]["Resource"] == "*"
    for action in ("ec2:StartInstances", "ec2:StopInstances"):
        condition = allowed[action]["Condition"]["StringEquals"]
        assert condition == {"aws:ResourceTag/pullre-pool": "true"}


def test_the_mariadb_grant_is_enough_for_a_clone_and_a_drop(mysql_server_url: str) -> None:
    """The README's statement, run as written for a fresh account: that account clones a schema
    with views, triggers, routines and events, creates the PR's user, and drops both while the
    PR's app holds an open transaction."""
    mariadb = section("The staging MySQL account").split("MariaDB 10.5.2 and later", 1)[1]
    statements = [s.strip() for s in blocks(mariadb, "sql")[0].split(";") if s.strip()]
    admin_name, password = f"pullre_adm_{secrets.token_hex(4)}", secrets.token_hex(16)
    url = make_url(mysql_server_url)
    root = pymysql.connect(
        host=url.host, port=url.port or 3306, user=url.username, password=url.password or "",
        autocommit=True,
    )  # fmt: skip
    source = f"readme_src_{secrets.token_hex(4)}"
    target = schema_name(600_000_000 + secrets.randbelow(99_999_999), 1)
    q = quote_identifier(source)
    try:
        with root.cursor() as cursor:
            for written in statements:  # the password is hex: nothing to escape
                cursor.execute(
                    written.replace("pullre_admin", admin_name).replace("PASSWORD", password)
                )
            for statement in (
                f"CREATE DATABASE {q}",
                f"CREATE TABLE {q}.t (id INT PRIMARY KEY, n INT NOT NULL DEFAULT 0)",
                f"INSERT INTO {q}.t (id) VALUES (1), (2)",
                f"CREATE VIEW {q}.v AS SELECT id FROM {q}.t",
                f"CREATE TRIGGER {q}.bump BEFORE UPDATE ON {q}.t FOR EACH ROW"
                " SET NEW.n = OLD.n + 1",
                f"CREATE FUNCTION {q}.twice(x INT) RETURNS INT DETERMINISTIC RETURN x * 2",
                f"CREATE EVENT {q}.tick ON SCHEDULE EVERY 1 DAY DISABLE"
                f" DO DELETE FROM {q}.t WHERE id < 0",
            ):
                cursor.execute(statement)
        host = f"{url.host}:{url.port or 3306}"
        staging = PyMysqlStagingDatabase.from_url(f"mysql://{admin_name}:{password}@{host}")
        result = staging.clone(source, target)
        assert (result.views, result.triggers, result.routines, result.events) == (1, 1, 1, 1)
        credentials = staging.create_user(target)
        app = pymysql.connect(
            host=credentials.host, port=credentials.port, user=credentials.user,
            password=credentials.password, database=credentials.database, autocommit=True,
        )  # fmt: skip
        with app.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("UPDATE t SET id = id WHERE id = 1")  # holds a lock, fires the trigger
            cursor.execute("SELECT twice(n) FROM v JOIN t USING (id) WHERE id = 1")
            assert cursor.fetchone() == (2,)
        staging.drop(target)  # ends the app's session first, or this would wait on its lock
        assert not staging.exists(target)
    finally:
        with root.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {q}")
            cursor.execute(f"DROP DATABASE IF EXISTS {quote_identifier(target)}")
            cursor.execute(f"DROP USER IF EXISTS '{target}'@'%'")
            cursor.execute(f"DROP USER IF EXISTS '{admin_name}'@'%'")
        root.close()
