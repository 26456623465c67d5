"""The agent's settings, the repository's .pullre.toml and the values handed to the app."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

import client
from pullre.agent import repo_config
from pullre.agent.assignment import Database, Defaults
from pullre.agent.controller import tail
from pullre.agent.repo_config import RepoConfigError
from pullre.agent.settings import AgentSettings, SettingsError, load
from tests.agent_fixtures import TOKEN, FakeController

BOX = AgentSettings(controller_url="http://c", token="t", workdir=Path("/w"))


def test_missing_keys_are_named_in_one_error_and_client_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("CONTROLLER_URL", "TOKEN", "WORKDIR"):
        monkeypatch.delenv(f"PULLRE_AGENT_{key}", raising=False)
    ini = tmp_path / "agent.ini"
    ini.write_text("[agent]\nworkdir = /tmp/x\nstrat = oops\n")

    assert client.main(["--config", str(ini)]) == 2

    err = capsys.readouterr().err
    assert "[agent] controller_url (PULLRE_AGENT_CONTROLLER_URL): missing" in err
    assert "[agent] token (PULLRE_AGENT_TOKEN): missing" in err
    assert "unknown key [agent] strat" in err
    assert "workdir" not in err.split("unknown key")[0].replace("(PULLRE_AGENT_", "")


def test_the_environment_overrides_the_file(tmp_path: Path) -> None:
    ini = tmp_path / "agent.ini"
    ini.write_text(
        "[agent]\ncontroller_url = http://file.example/\ntoken = from-file\nworkdir = /srv/a\n"
    )
    settings = load(ini, {"PULLRE_AGENT_TOKEN": "from-env", "PULLRE_AGENT_PORT": "9000"})
    assert settings.token == "from-env"
    assert settings.controller_url == "http://file.example"
    assert settings.workdir == Path("/srv/a")
    assert settings.port == 9000


def test_bad_values_are_errors(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as raised:
        load(
            None,
            {
                "PULLRE_AGENT_CONTROLLER_URL": "ftp://x",
                "PULLRE_AGENT_TOKEN": "t",
                "PULLRE_AGENT_WORKDIR": str(tmp_path),
                "PULLRE_AGENT_HEALTH_TIMEOUT": "soon",
            },
        )
    assert "controller_url: expected an http(s) URL" in str(raised.value)
    assert "health_timeout" in str(raised.value)


def test_client_runs_one_pass_and_reports_a_refused_token(
    tmp_path: Path, fake_controller: FakeController, monkeypatch: pytest.MonkeyPatch
) -> None:
    ini = tmp_path / "agent.ini"
    ini.write_text(
        f"[agent]\ncontroller_url = {fake_controller.url}\ntoken = {TOKEN}\n"
        f"workdir = {tmp_path / 'work'}\n"
    )
    for key in ("CONTROLLER_URL", "TOKEN", "WORKDIR"):
        monkeypatch.delenv(f"PULLRE_AGENT_{key}", raising=False)

    assert client.main(["--config", str(ini)]) == 0
    assert fake_controller.heartbeats() == [
        {
            "agent_version": "0.1.0",
            "deployed_sha": None,
            "app_running": False,
            "environment_id": None,
            "app_in_use": None,  # no app, so nothing to tell
            # No allow_same_user, and an ini others may read: no PR code would run here.
            "runs_as": "refused",
            "dirty": None,
        }
    ]

    monkeypatch.setenv("PULLRE_AGENT_TOKEN", "revoked")
    assert client.main(["--config", str(ini)]) == 1


def test_string_commands_run_under_sh_and_lists_as_argv() -> None:
    data = (
        b'[deploy]\nbuild = "make assets && echo done"\nstart = ["./server", "--port", "$PORT"]\n'
    )
    config = repo_config.load(data, Defaults(), BOX)
    assert config.build == ("sh", "-c", "make assets && echo done")
    assert config.start == ("./server", "--port", "$PORT")  # no expansion: an argv list


def test_repository_file_wins_then_controller_defaults_then_the_box() -> None:
    box = AgentSettings(
        controller_url="http://c",
        token="t",
        workdir=Path("/w"),
        port=7000,
        health_path="/box",
        health_timeout=5,
        start="./box-start",
        build="./box-build",
    )
    defaults = Defaults(port=8001, start=("./default-start",))
    config = repo_config.load(b"[deploy]\nhealth_path = '/up'\n", defaults, box)
    assert config.health_path == "/up"
    assert config.port == 8001
    assert config.start == ("./default-start",)
    assert config.build == ("sh", "-c", "./box-build")
    assert config.health_timeout == 5
    assert config.migrate is None

    bare = repo_config.load(None, Defaults(), BOX)
    assert (bare.port, bare.health_path, bare.health_timeout, bare.start) == (8000, "/", 60, None)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (b"[deploy]\nstrat = 'x'\n", "unknown key(s) in [deploy]: strat"),
        (b"[deploy]\nstart = []\n", "[deploy] start must be a list of strings"),
        (b"[deploy]\nport = 70000\n", "[deploy] port must be a port number"),
        (b"[deploy]\nhealth_path = 'up'\n", "health_path must be a path starting with /"),
        (b"[deploy]\nhealth_timeout = 0\n", "health_timeout must be seconds above 0"),
        (b"[migrations]\nsql_dir = '../../etc'\n", "must be a path inside the repository"),
        (b"[env]\n'A-B' = 'x'\n", "is not a variable name"),
        (b"[env]\nA = [1]\n", "[env] A must be a string or a number"),
        (b"deploy = 3\n", "deploy must be a table"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_a_bad_pullre_toml_names_the_problem(toml: bytes, message: str) -> None:
    with pytest.raises(RepoConfigError) as raised:
        repo_config.load(toml, Defaults(), BOX)
    assert message in str(raised.value)


def test_unknown_top_level_tables_are_left_for_newer_agents() -> None:
    config = repo_config.load(
        b"[smoke]\npaths = ['/']\n[env]\nDEBUG = true\nN = 3\n", Defaults(), BOX
    )
    assert config.env == {"DEBUG": "true", "N": "3"}


def test_database_url_survives_any_password() -> None:
    password = "p@ss:w/rd%20?#&=\"'\\ end"
    database = Database(
        host="db.internal", port=3306, user="pr_3_12", password=password, name="pr_3_12"
    )
    parts = urlsplit(database.url)
    assert parts.scheme == "mysql"
    assert (parts.hostname, parts.port, parts.path) == ("db.internal", 3306, "/pr_3_12")
    assert unquote(parts.username or "") == "pr_3_12"
    assert unquote(parts.password or "") == password


def test_log_tail_keeps_the_end_within_64_kib_on_a_character_boundary() -> None:
    text = "é" * 40000 + "the end"
    cut = tail(text)
    assert len(cut.encode()) <= 64 * 1024
    assert cut.endswith("the end")
    assert tail("short") == "short"


def test_the_app_user_keys_and_their_defaults(tmp_path: Path) -> None:
    ini = tmp_path / "agent.ini"
    ini.write_text("[agent]\ncontroller_url = http://c\ntoken = t\nworkdir = /var/lib/a\n")
    loaded = load(ini, {})
    assert (loaded.app_user, loaded.allow_same_user) == ("pullre-app", False)
    assert loaded.app_root == Path("/var/lib/a-app")
    assert loaded.source == ini

    environ = {"PULLRE_AGENT_APP_DIR": "/srv/app", "PULLRE_AGENT_ALLOW_SAME_USER": "yes"}
    loaded = load(ini, environ)
    assert (loaded.app_root, loaded.allow_same_user) == (Path("/srv/app"), True)

    with pytest.raises(SettingsError) as caught:
        load(ini, {"PULLRE_AGENT_APP_DIR": "relative", "PULLRE_AGENT_ALLOW_SAME_USER": "maybe"})
    assert "app_dir: expected an absolute path" in str(caught.value)
    assert "allow_same_user: expected true or false" in str(caught.value)
