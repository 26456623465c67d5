"""Settings: layering, environment overrides and one error naming every bad key."""

from __future__ import annotations

import configparser
from dataclasses import fields
from pathlib import Path

import pytest

from pullre.config import DEFAULT_FILE, SECTIONS, ConfigError, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "app.ini"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_alone_give_an_embedded_sqlite_controller() -> None:
    settings = load_settings(DEFAULT_FILE, environ={})
    assert settings.controller.database_url == "sqlite:///pullre.db"
    assert settings.controller.port == 8080
    assert settings.pool.include_drafts is False
    assert settings.github.app_id is None


def test_every_setting_is_documented_in_the_default_file() -> None:
    """Each key in the schema appears in app.ini.default under a comment (a comment may
    document a run of related keys, like host and port)."""
    text = DEFAULT_FILE.read_text(encoding="utf-8").splitlines()
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(DEFAULT_FILE)
    assert set(parser.sections()) == set(SECTIONS)
    for section, cls in SECTIONS.items():
        assert set(parser[section]) == {f.name for f in fields(cls)}, section
        for key in parser[section]:
            index = next(i for i, line in enumerate(text) if line.startswith(f"{key} ="))
            while "=" in text[index - 1] and not text[index - 1].startswith("#"):
                index -= 1
            assert text[index - 1].startswith("#"), f"{key} has no comment"


def test_file_overrides_defaults_and_environment_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[controller]\nport = 9000\nhost = 0.0.0.0\n")
    settings = load_settings(path, environ={"PULLRE_CONTROLLER_PORT": "9100"})
    assert settings.controller.port == 9100
    assert settings.controller.host == "0.0.0.0"


def test_every_bad_key_is_named_in_one_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[controller]\nport = eighty\ndatabase_url = postgres://x/y\n"
        "[pool]\ninclude_drafts = maybe\nlease_seconds = 1\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={"PULLRE_AWS_ENDPOINT_URL": "ftp://nowhere"})
    message = str(caught.value)
    assert len(caught.value.problems) == 5
    for key in (
        "[controller] port",
        "[controller] database_url",
        "[pool] include_drafts",
        "[pool] lease_seconds",
        "[aws] endpoint_url",
    ):
        assert key in message
    assert "PULLRE_CONTROLLER_PORT" in message
    assert "'eighty'" in message


def test_a_missing_key_is_named(tmp_path: Path) -> None:
    defaults = tmp_path / "defaults.ini"
    defaults.write_text(DEFAULT_FILE.read_text().replace("lease_seconds = 120\n", ""))
    with pytest.raises(ConfigError, match=r"\[pool\] lease_seconds .*missing"):
        load_settings(write(tmp_path, ""), environ={}, defaults_file=defaults)


def test_unknown_keys_and_sections_are_errors_not_ignored(tmp_path: Path) -> None:
    path = write(tmp_path, "[controller]\nprot = 9000\n[githb]\ntoken = abc\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert "unknown key [controller] prot" in str(caught.value)
    assert "unknown section [githb]" in str(caught.value)


def test_placeholders_are_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "[github]\ntoken = <your token>\n")
    with pytest.raises(ConfigError, match=r"\[github\] token .*placeholder"):
        load_settings(path, environ={})


def test_secret_values_never_appear_in_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "[staging_mysql]\nurl = postgres://admin:hunter2secret@db/x\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert "[staging_mysql] url" in str(caught.value)
    assert "hunter2secret" not in str(caught.value)


def test_an_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        load_settings(tmp_path / "nope.ini", environ={})


def test_github_app_needs_all_three_settings(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="app_private_key_file and installation_id"):
        load_settings(DEFAULT_FILE, environ={"PULLRE_GITHUB_APP_ID": "12"})


def test_blank_optional_values_mean_not_set(tmp_path: Path) -> None:
    path = write(tmp_path, "[github]\napp_id =\ninstallation_id =\n[aws]\nendpoint_url =\n")
    settings = load_settings(path, environ={})
    assert settings.github.app_id is None
    assert settings.aws.endpoint_url == ""


def test_schema_prefix_defaults_to_pr_and_is_checked_like_a_schema_name(tmp_path: Path) -> None:
    assert load_settings(DEFAULT_FILE, environ={}).staging_mysql.schema_prefix == "pr"
    path = write(tmp_path, "[staging_mysql]\nschema_prefix = shop_2\n")
    assert load_settings(path, environ={}).staging_mysql.schema_prefix == "shop_2"
    for bad in ("pr`; DROP DATABASE x", "pr-1", "1pr", "_pr", "p" * 17, "naïve", "pr%"):
        with pytest.raises(ConfigError) as caught:
            load_settings(path, environ={"PULLRE_STAGING_MYSQL_SCHEMA_PREFIX": bad})
        message = str(caught.value)
        assert "[staging_mysql] schema_prefix" in message
        assert "a letter, then letters, digits or _, at most 16" in message
    with pytest.raises(ConfigError, match="schema_prefix"):
        load_settings(write(tmp_path, "[staging_mysql]\nschema_prefix =\n"), environ={})
