"""The agent's own ``[agent]`` settings: an ini file, overridden by ``PULLRE_AGENT_<KEY>``.

The controller's settings loader is not importable on a box that holds this package alone, so
this is a small reader of the same file shape and the same environment names. Besides the three
keys every agent needs, a box may set fallbacks for what a repository's ``.pullre.toml`` and the
controller's defaults leave open (``port``, ``health_path``, ``health_timeout``, ``build``,
``migrate``, ``start``); those live in the box's own ini, since the controller rejects unknown
``[agent]`` keys in its file.

``app_user`` (default ``pullre-app``) is the unprivileged user PR code runs as, and ``app_dir``
(default ``<workdir>-app``) the directory holding its checkouts, HOME and TMPDIR; the agent runs
PR code as its own user only where ``allow_same_user`` says so (see ``app_user``).
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

SECTION = "agent"
REQUIRED = ("controller_url", "token", "workdir")
OPTIONAL = (
    "port",
    "health_path",
    "health_timeout",
    "build",
    "migrate",
    "start",
    "app_user",
    "app_dir",
    "allow_same_user",
)
DEFAULT_APP_USER = "pullre-app"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class SettingsError(Exception):
    """Every problem found in one load, so an operator fixes the file in one round."""


@dataclass(frozen=True)
class AgentSettings:
    controller_url: str
    token: str
    workdir: Path
    port: int | None = None
    health_path: str | None = None
    health_timeout: float | None = None
    #: Shell command lines chosen by the box's operator (run with ``sh -c``), never PR data.
    build: str | None = None
    migrate: str | None = None
    start: str | None = None
    #: The unprivileged user every PR command runs as.
    app_user: str = DEFAULT_APP_USER
    #: Checkouts, HOME and TMPDIR of the app user; None: ``<workdir>-app`` beside the workdir.
    app_dir: Path | None = None
    #: Run PR code as the agent's own user when no separate app user can be used (sandbox,
    #: laptops). Off by default: the agent then refuses to run PR code at all.
    allow_same_user: bool = False
    #: The ini file read, if any, so the agent can check nobody else can read it.
    source: Path | None = None

    @property
    def app_root(self) -> Path:
        return self.app_dir or self.workdir.with_name(self.workdir.name + "-app")


def env_name(key: str) -> str:
    return f"PULLRE_{SECTION.upper()}_{key.upper()}"


def load(path: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> AgentSettings:
    """Read ``path`` (default ``app.ini`` when present), then let the environment win."""
    problems: list[str] = []
    parser = configparser.ConfigParser(interpolation=None)
    file = Path(path) if path is not None else Path("app.ini")
    if path is not None or file.is_file():
        try:
            with file.open(encoding="utf-8") as handle:
                parser.read_file(handle)
        except OSError as exc:
            problems.append(f"{file}: cannot be read ({exc.strerror or exc})")
        except configparser.Error as exc:
            problems.append(f"{file}: not a valid ini file ({exc.message})")

    raw: dict[str, str] = {}
    for key in REQUIRED + OPTIONAL:
        if env_name(key) in environ:
            raw[key] = environ[env_name(key)].strip()
        elif parser.has_option(SECTION, key):
            raw[key] = parser.get(SECTION, key).strip()
    if parser.has_section(SECTION):
        problems.extend(
            f"{file}: unknown key [{SECTION}] {key}"
            for key in parser[SECTION]
            if key not in REQUIRED + OPTIONAL
        )
    problems.extend(
        f"[{SECTION}] {key} ({env_name(key)}): missing; it must be set"
        for key in REQUIRED
        if not raw.get(key)
    )
    values = _typed(raw, problems)
    if problems:
        raise SettingsError(
            "invalid agent configuration:\n" + "\n".join(f"  - {p}" for p in problems)
        )
    if file.is_file():
        values["source"] = file
    return AgentSettings(**values)  # type: ignore[arg-type]


def _typed(raw: dict[str, str], problems: list[str]) -> dict[str, object]:
    values: dict[str, object] = {key: value for key, value in raw.items() if value}
    url = raw.get("controller_url", "")
    if url:
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            problems.append(f"[{SECTION}] controller_url: expected an http(s) URL, got {url!r}")
        values["controller_url"] = url.rstrip("/")
    if raw.get("workdir"):
        values["workdir"] = Path(raw["workdir"])
    if raw.get("port"):
        try:
            port = int(raw["port"])
        except ValueError:
            port = 0
        if not 1 <= port <= 65535:
            problems.append(f"[{SECTION}] port: expected a port number, got {raw['port']!r}")
        values["port"] = port
    if raw.get("health_timeout"):
        try:
            timeout = float(raw["health_timeout"])
        except ValueError:
            timeout = 0.0
        if timeout <= 0:
            problems.append(
                f"[{SECTION}] health_timeout: expected seconds above 0, "
                f"got {raw['health_timeout']!r}"
            )
        values["health_timeout"] = timeout
    _app_keys(raw, values, problems)
    if raw.get("health_path") and not raw["health_path"].startswith("/"):
        problems.append(f"[{SECTION}] health_path: expected a path starting with /")
    return values


def _app_keys(raw: dict[str, str], values: dict[str, object], problems: list[str]) -> None:
    if raw.get("app_dir"):
        app_dir = Path(raw["app_dir"])
        if not app_dir.is_absolute():
            problems.append(f"[{SECTION}] app_dir: expected an absolute path")
        values["app_dir"] = app_dir
    flag = raw.get("allow_same_user", "").lower()
    if flag:
        if flag not in _TRUE | _FALSE:
            problems.append(f"[{SECTION}] allow_same_user: expected true or false, got {flag!r}")
        values["allow_same_user"] = flag in _TRUE
