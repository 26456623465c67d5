"""Settings: ``app.ini`` over ``app.ini.default``, overridden by ``PULLRE_<SECTION>_<KEY>``.

The schema below says what each key *is* (its type and constraints); the default *values* live
only in ``app.ini.default`` so the file people read is the one the code uses. Every problem found
while loading is collected first and raised as one ``ConfigError``, so an operator fixes a broken
file in one round instead of one traceback per key. What each key's text may be (a whole
number, a URL, prices...) is ``config_values``.
"""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields
from decimal import Decimal
from pathlib import Path
from typing import Any

from pullre import config_values as value

DEFAULT_FILE = Path(__file__).resolve().parent.parent / "app.ini.default"
ENV_PREFIX = "PULLRE_"

# Values that someone copied from an example and never filled in. Accepting them silently would
# turn a missing secret into a wrong one, so they are rejected wherever they appear.
_PLACEHOLDER = re.compile(r"^(<.*>|change[-_ ]?me|todo|xxx+|your[-_ ].*)$", re.IGNORECASE)


class ConfigError(Exception):
    """Every bad setting found in one load, each naming its key and what is expected."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


def _setting(parse: value.Parser = value.text, *, secret: bool = False) -> Any:
    return field(metadata={"parse": parse, "secret": secret})


#: Threads of the web server (app.py); agents waiting for their assignment may hold all but
#: ``PAGE_THREADS`` of them (``[controller] agent_wait_slots``), which pages always keep.
WEB_THREADS = 40
PAGE_THREADS = 8


@dataclass(frozen=True)
class ControllerSettings:
    database_url: str = _setting(value.database_url)
    secret_key: str = _setting(secret=True)
    secret_key_file: str = _setting()
    host: str = _setting()
    port: int = _setting(value.integer(1, 65535))
    public_url: str = _setting(value.url("http", "https", optional=True))
    metrics_token: str = _setting(secret=True)
    log_format: str = _setting(value.choice("text", "json"))
    agent_wait_slots: int = _setting(value.integer(0, WEB_THREADS - PAGE_THREADS))
    trusted_proxies: int = _setting(value.integer(0, 5))


@dataclass(frozen=True)
class GithubSettings:
    api_url: str = _setting(value.url("http", "https"))
    token: str = _setting(secret=True)
    app_id: int | None = _setting(value.optional_int)
    app_private_key_file: str = _setting(value.existing_file_or_blank)
    installation_id: int | None = _setting(value.optional_int)
    webhook_secret: str = _setting(secret=True)
    write_interval: float = _setting(value.seconds)


@dataclass(frozen=True)
class AwsSettings:
    region: str = _setting()
    endpoint_url: str = _setting(value.url("http", "https", optional=True))


@dataclass(frozen=True)
class StagingMysqlSettings:
    url: str = _setting(value.url("mysql", optional=True), secret=True)
    # Defaults here too, for code that builds the section by hand (tests, tools): it keeps
    # pullre's names and limits; load_settings always reads app.ini.default's values.
    max_user_connections: int = field(
        default=20, metadata={"parse": value.integer(1), "secret": False}
    )
    schema_prefix: str = field(
        default="pr", metadata={"parse": value.schema_prefix, "secret": False}
    )


@dataclass(frozen=True)
class PoolSettings:
    include_drafts: bool = _setting(value.boolean)
    lease_seconds: int = _setting(value.integer(5))
    allow_self_signoff: bool = _setting(value.boolean)
    idle_stop_minutes: int = _setting(value.integer(0))
    reclaim_sleeping_after_minutes: int = _setting(value.integer(0))
    ttl_hours: int = _setting(value.integer(0))
    expiry_warning_hours: int = _setting(value.integer(0))


@dataclass(frozen=True)
class CostSettings:
    currency: str = _setting()
    instance_prices: Mapping[str, Decimal] = _setting(value.prices)


@dataclass(frozen=True)
class AgentSettings:
    controller_url: str = _setting(value.url("http", "https", optional=True))
    token: str = _setting(secret=True)
    workdir: str = _setting()
    app_user: str = _setting()
    app_dir: str = _setting()
    allow_same_user: bool = _setting(value.boolean)


@dataclass(frozen=True)
class Settings:
    controller: ControllerSettings
    github: GithubSettings
    aws: AwsSettings
    staging_mysql: StagingMysqlSettings
    pool: PoolSettings
    cost: CostSettings
    agent: AgentSettings


SECTIONS: dict[str, type] = {
    "controller": ControllerSettings,
    "github": GithubSettings,
    "aws": AwsSettings,
    "staging_mysql": StagingMysqlSettings,
    "pool": PoolSettings,
    "cost": CostSettings,
    "agent": AgentSettings,
}


def env_name(section: str, key: str) -> str:
    return f"{ENV_PREFIX}{section.upper()}_{key.upper()}"


def _read_ini(path: Path, problems: list[str]) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with path.open(encoding="utf-8") as handle:
            parser.read_file(handle)
    except OSError as exc:
        problems.append(f"{path}: cannot be read ({exc.strerror or exc})")
    except configparser.Error as exc:
        problems.append(f"{path}: not a valid ini file ({exc.message})")
    return parser


Layer = tuple[str, configparser.ConfigParser]


def _layers(
    path: str | os.PathLike[str] | None, defaults_file: Path, problems: list[str]
) -> list[Layer]:
    """The ini files to read, lowest priority first, each with a name for error messages."""
    layers = [("defaults", _read_ini(defaults_file, problems))]
    if path is None:
        candidate = Path("app.ini")
        if candidate.is_file():
            layers.append((str(candidate), _read_ini(candidate, problems)))
    else:
        layers.append((str(path), _read_ini(Path(path), problems)))
    return layers


def _check_unknown(layers: list[Layer], problems: list[str]) -> None:
    """A misspelt key would otherwise be ignored and its default silently used."""
    for origin, parser in layers[1:]:
        for section in parser.sections():
            if section not in SECTIONS:
                problems.append(f"{origin}: unknown section [{section}]")
                continue
            known = {f.name for f in fields(SECTIONS[section])}
            problems.extend(
                f"{origin}: unknown key [{section}] {key}"
                for key in parser[section]
                if key not in known
            )


def _lookup(
    section: str, key: str, layers: list[Layer], environ: Mapping[str, str]
) -> tuple[str, str] | None:
    """(raw value, where it came from): the environment first, then the files, last first."""
    name = env_name(section, key)
    if name in environ:
        return environ[name], name
    for origin, parser in reversed(layers):
        if parser.has_option(section, key):
            return parser.get(section, key), origin
    return None


def _parse(section: str, spec: Field[Any], found: tuple[str, str] | None) -> Any:
    """The typed value, or ValueError with the whole sentence naming the key."""
    label = f"[{section}] {spec.name} ({env_name(section, spec.name)})"
    if found is None:
        raise ValueError(f"{label}: missing; it must be set (see app.ini.default)")
    raw, origin = found[0].strip(), found[1]
    if raw and _PLACEHOLDER.match(raw):
        raise ValueError(
            f"{label}: still holds the placeholder from {origin}; set a real value or leave it "
            "blank"
        )
    try:
        return spec.metadata["parse"](raw)
    except ValueError as exc:
        shown = "" if spec.metadata["secret"] else f", got {raw!r}"
        raise ValueError(f"{label}: expected {exc}{shown} (from {origin})") from None


def load_settings(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    defaults_file: Path = DEFAULT_FILE,
) -> Settings:
    """Load settings from ``path`` (default ``app.ini``, optional) over the shipped defaults.

    An explicitly named file that does not exist is an error; the implicit ``app.ini`` may be
    absent so a fresh checkout runs on the defaults alone.
    """
    environ = os.environ if environ is None else environ
    problems: list[str] = []
    layers = _layers(path, defaults_file, problems)
    _check_unknown(layers, problems)

    values: dict[str, dict[str, Any]] = {}
    for section, cls in SECTIONS.items():
        values[section] = {}
        for spec in fields(cls):
            try:
                values[section][spec.name] = _parse(
                    section, spec, _lookup(section, spec.name, layers, environ)
                )
            except ValueError as exc:
                problems.append(str(exc))

    github = values["github"]
    if github.get("app_id") and not (
        github.get("app_private_key_file") and github.get("installation_id")
    ):
        problems.append(
            "[github] app_id is set, so app_private_key_file and installation_id are required "
            "too (GitHub App authentication)"
        )

    if problems:
        raise ConfigError(problems)
    return Settings(**{section: SECTIONS[section](**values[section]) for section in SECTIONS})


def public_url(settings: Settings) -> str:
    """The controller's address as people reach it; links in GitHub and the UI use it."""
    controller = settings.controller
    return controller.public_url or f"http://{controller.host}:{controller.port}"
