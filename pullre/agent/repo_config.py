"""What to run for a repository: its ``.pullre.toml`` at the PR's commit, then fallbacks.

Each value is taken from the first place that sets it: the repository's file, the controller's
per-repository ``defaults`` in the assignment, this box's ``[agent]`` ini, built-in defaults.
Commands are argv lists; a string is the repository's own command line and runs as the single
argument of ``sh -c``. Nothing from the PR's metadata (branch name, title) is ever put into one.

A misspelt key inside a known table is an error rather than silently ignored, since ignoring it
would quietly deploy with the wrong command; unknown top-level tables are left alone so that
newer sections do not break older agents. ``[[smoke]]`` entries never fail the checkout: a bad
one becomes an ``error`` result of the smoke step (see ``pullre.smoke.config``).
"""

from __future__ import annotations

import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from pullre.agent.assignment import Defaults
from pullre.agent.settings import AgentSettings
from pullre.smoke.config import Check, parse_checks

Command = tuple[str, ...]
DEFAULT_PORT = 8000
DEFAULT_HEALTH_PATH = "/"
DEFAULT_HEALTH_TIMEOUT_S = 60.0
_DEPLOY_KEYS = {
    "build",
    "migrate",
    "start",
    "port",
    "health_path",
    "health_timeout",
    "deep_smoke_after_deploy",
}
_MIGRATION_KEYS = {"sql_dir"}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class RepoConfigError(Exception):
    """The repository's ``.pullre.toml`` cannot be used; the message says where and why."""


@dataclass(frozen=True)
class RepoConfig:
    build: Command | None = None
    migrate: Command | None = None
    start: Command | None = None
    port: int = DEFAULT_PORT
    health_path: str = DEFAULT_HEALTH_PATH
    health_timeout: float = DEFAULT_HEALTH_TIMEOUT_S
    env: dict[str, str] = field(default_factory=dict)
    sql_dir: str | None = None
    smoke: tuple[Check, ...] = ()
    #: Run the deep smoke tier too after every deploy, not only when someone asks for it.
    deep_smoke_after_deploy: bool = False


def shell(command_line: str) -> Command:
    return ("sh", "-c", command_line)


def load(data: bytes | None, defaults: Defaults, settings: AgentSettings) -> RepoConfig:
    """The effective configuration; ``data`` is the file's bytes, None when it has none."""
    raw = _parse(data) if data is not None else {}
    deploy = _table(raw, "deploy", _DEPLOY_KEYS)
    migrations = _table(raw, "migrations", _MIGRATION_KEYS)

    def command(key: str) -> Command | None:
        if key in deploy:
            return _command(deploy[key], f"[deploy] {key}")
        fallback = getattr(defaults, key)
        if fallback is not None:
            return tuple(fallback)
        line: str | None = getattr(settings, key)
        return shell(line) if line else None

    port = _port(deploy["port"]) if "port" in deploy else None
    health_path = _health_path(deploy["health_path"]) if "health_path" in deploy else None
    timeout = _timeout(deploy["health_timeout"]) if "health_timeout" in deploy else None
    return RepoConfig(
        build=command("build"),
        migrate=command("migrate"),
        start=command("start"),
        port=port or defaults.port or settings.port or DEFAULT_PORT,
        health_path=health_path or defaults.health_path or settings.health_path or "/",
        health_timeout=timeout or settings.health_timeout or DEFAULT_HEALTH_TIMEOUT_S,
        env=_env(raw.get("env", {})),
        sql_dir=_sql_dir(migrations["sql_dir"]) if "sql_dir" in migrations else None,
        smoke=parse_checks(raw.get("smoke")),
        deep_smoke_after_deploy=_flag(deploy, "deep_smoke_after_deploy"),
    )


def _flag(table: dict[str, Any], key: str) -> bool:
    value = table.get(key, False)
    if not isinstance(value, bool):
        raise RepoConfigError(f".pullre.toml: [deploy] {key} must be true or false, got {value!r}")
    return value


def _parse(data: bytes) -> dict[str, Any]:
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise RepoConfigError(f".pullre.toml is not UTF-8: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RepoConfigError(f".pullre.toml is not valid TOML: {exc}") from None


def _table(raw: dict[str, Any], name: str, known: set[str]) -> dict[str, Any]:
    table = raw.get(name, {})
    if not isinstance(table, dict):
        raise RepoConfigError(f".pullre.toml: {name} must be a table ([{name}])")
    unknown = sorted(set(table) - known)
    if unknown:
        raise RepoConfigError(
            f".pullre.toml: unknown key(s) in [{name}]: {', '.join(unknown)} "
            f"(known: {', '.join(sorted(known))})"
        )
    return table


def _command(value: object, where: str) -> Command:
    if isinstance(value, str) and value.strip():
        return shell(value)
    if (
        isinstance(value, list)
        and value
        and all(isinstance(arg, str) for arg in value)
        and value[0]
    ):
        return tuple(value)
    raise RepoConfigError(
        f".pullre.toml: {where} must be a list of strings (argv) or a command line string"
    )


def _port(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535:
        return value
    raise RepoConfigError(f".pullre.toml: [deploy] port must be a port number, got {value!r}")


def _health_path(value: object) -> str:
    if isinstance(value, str) and value.startswith("/") and value.isprintable():
        return value
    raise RepoConfigError(
        f".pullre.toml: [deploy] health_path must be a path starting with /, got {value!r}"
    )


def _timeout(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    raise RepoConfigError(
        f".pullre.toml: [deploy] health_timeout must be seconds above 0, got {value!r}"
    )


def _env(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        raise RepoConfigError(".pullre.toml: env must be a table ([env])")
    env: dict[str, str] = {}
    for name, item in value.items():
        if not _ENV_NAME.fullmatch(name):
            raise RepoConfigError(f".pullre.toml: [env] {name!r} is not a variable name")
        if isinstance(item, bool):
            env[name] = "true" if item else "false"
        elif isinstance(item, str | int | float):
            env[name] = str(item)
        else:
            raise RepoConfigError(f".pullre.toml: [env] {name} must be a string or a number")
        if "\0" in env[name]:
            raise RepoConfigError(f".pullre.toml: [env] {name} holds a NUL byte")
    return env


def _sql_dir(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise RepoConfigError(".pullre.toml: [migrations] sql_dir must be a directory name")
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts:
        raise RepoConfigError(
            f".pullre.toml: [migrations] sql_dir {value!r} must be a path inside the repository"
        )
    return value


def describe(config: RepoConfig) -> str:
    """What the checkout step reports: the commands and checks this deploy will use."""

    def show(argv: tuple[str, ...] | None) -> str:
        return shlex.join(argv) if argv else "-"

    return (
        f"\nbuild: {show(config.build)}\nmigrate: {show(config.migrate)}"
        f"\nsql_dir: {config.sql_dir or '-'}\nstart: {show(config.start)}"
        f"\nport: {config.port}  health: {config.health_path} within {config.health_timeout:g} s"
        f"\nenv: {', '.join(sorted(config.env)) or '-'}"
        f"\nsmoke: {sum(c.tier == 'fast' for c in config.smoke)} fast, "
        f"{sum(c.tier == 'deep' for c in config.smoke)} deep\n"
    )
