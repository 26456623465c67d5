"""The admin CLI and init.py, run as a user would: same arguments, same files, real exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from pullre.accounts import user_accounts as accounts
from pullre.cli.main import main as cli
from pullre.db import make_engine, make_session_factory
from pullre.models import (
    Environment,
    EnvironmentStatus,
    PullRequest,
    Repository,
    Role,
    Server,
    User,
)
from tests.cli_fixtures import ADMIN_PASSWORD, ROOT, init


def users(config: Path) -> list[tuple[str, Role]]:
    engine = make_engine(f"sqlite:///{config.parent / 'cli.db'}")
    with make_session_factory(engine)() as session:
        found = [(u.username, u.role) for u in session.scalars(select(User))]
    engine.dispose()
    return found


def test_init_creates_the_admin_once_and_is_safe_to_rerun(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULLRE_ADMIN_PASSWORD", "another password")
    assert init.main(["--config", str(config), "--admin-user", "admin"]) == 0
    out = capsys.readouterr().out
    assert "already exists; left unchanged" in out
    assert "python app.py" in out  # says what to do next
    assert users(config) == [("admin", Role.ADMIN)]
    engine = make_engine(f"sqlite:///{config.parent / 'cli.db'}")
    with make_session_factory(engine)() as session:
        assert accounts.authenticate(session, "admin", ADMIN_PASSWORD) is not None
    engine.dispose()


def test_init_without_password_and_without_terminal_fails_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PULLRE_ADMIN_PASSWORD", raising=False)
    monkeypatch.setattr(sys, "stdin", open("/dev/null"))  # noqa: SIM115
    assert init.main(["--admin-user", "admin"]) == 1
    assert "PULLRE_ADMIN_PASSWORD" in capsys.readouterr().err


def test_repo_add_and_list(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        cli(
            [
                "--config",
                str(config),
                "repo",
                "add",
                "acme/shop",
                "--base-schema",
                "shop_base",
                "--label",
                "staging",
            ]
        )
        == 0
    )
    assert cli(["repo", "add", "acme/blog", "--config", str(config)]) == 0
    capsys.readouterr()
    assert cli(["--config", str(config), "repo", "list"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "acme/blog\tno base schema, any PR, enabled",
        "acme/shop\tbase schema shop_base, label staging, enabled",
    ]


def test_duplicate_repo_is_one_clear_line(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["--config", str(config), "repo", "add", "acme/shop"]) == 0
    assert cli(["--config", str(config), "repo", "add", "acme/shop"]) == 1
    assert capsys.readouterr().err == "pullre: acme/shop is already registered\n"


def test_invalid_arguments_are_refused(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli(["--config", str(config), "repo", "add", "acme/shop", "--base-schema", "x; drop"])
    assert exited.value.code == 2
    assert "is not a schema name" in capsys.readouterr().err


def test_github_user_and_user_add(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (
        cli(["--config", str(config), "github-user", "add", "alice", "--schema", "alice_db"]) == 0
    )
    assert cli(["--config", str(config), "github-user", "add", "alice", "--schema", "x"]) == 1
    monkeypatch.setenv("PULLRE_PASSWORD", "member password")
    assert cli(["--config", str(config), "user", "add", "bob", "--role", "member"]) == 0
    monkeypatch.setenv("PULLRE_PASSWORD", "short")
    assert cli(["--config", str(config), "user", "add", "carol"]) == 1
    assert "at least 8 characters" in capsys.readouterr().err
    assert users(config) == [("admin", Role.ADMIN), ("bob", Role.MEMBER)]


def test_status_json_shape_and_queue_positions(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = make_engine(f"sqlite:///{config.parent / 'cli.db'}")
    now = datetime.now(UTC)
    with make_session_factory(engine)() as session:
        repo = Repository(owner="acme", name="shop")
        server = Server(instance_id="i-0abc", name="stage-1", staging_url="https://pr.example")
        session.add_all([repo, server])
        session.flush()
        for number, status, on_server, minutes in (
            (1, EnvironmentStatus.READY, server, 30),
            (2, EnvironmentStatus.QUEUED, None, 10),
            (3, EnvironmentStatus.QUEUED, None, 20),
        ):
            pull = PullRequest(
                repository_id=repo.id,
                number=number,
                title=f"PR <{number}>",
                author_login="alice",
                head_sha=f"{number}" * 40,
            )
            session.add(pull)
            session.flush()
            session.add(
                Environment(
                    pull_request_id=pull.id,
                    status=status,
                    server_id=on_server.id if on_server else None,
                    queued_at=now - timedelta(minutes=minutes),
                    schema_name=f"pr_{repo.id}_{number}",
                )
            )
        session.add(PullRequest(repository_id=repo.id, number=4, title="no env"))
        session.commit()
    engine.dispose()
    capsys.readouterr()
    assert cli(["--config", str(config), "status", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data[0] == {
        "repository": "acme/shop",
        "number": 1,
        "title": "PR <1>",
        "author": "alice",
        "head_sha": "1" * 40,
        "state": "open",
        "awaiting_approval": False,
        "environment": {
            "status": "ready",
            "server": "stage-1",
            "url": "https://pr.example",
            "queue_position": None,
            "schema": "pr_1_1",
        },
    }
    # PR 3 has waited longer than PR 2, so it is first in the queue.
    assert [
        (d["number"], d["environment"] and d["environment"]["queue_position"]) for d in data
    ] == [(1, None), (2, 2), (3, 1), (4, None)]


def test_entry_points_report_config_errors_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ini"
    bad.write_text("[controller]\nport = eighty\n")
    for command in (
        ["-m", "pullre", "--config", str(bad), "status"],
        ["init.py", "--config", str(bad)],
        ["app.py", "--config", str(bad)],
    ):
        result = subprocess.run(
            [sys.executable, *command],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 2, command
        assert "[controller] port" in result.stderr
        assert "Traceback" not in result.stderr


def test_cli_refuses_an_uninitialised_database(tmp_path: Path) -> None:
    ini = tmp_path / "app.ini"
    ini.write_text(f"[controller]\ndatabase_url = sqlite:///{tmp_path / 'empty.db'}\n")
    result = subprocess.run(
        [sys.executable, "-m", "pullre", "--config", str(ini), "repo", "list"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "pullre: the database is not initialised or not up to date; run `python init.py`"
    )
