"""What the controller asks this server to run, validated before any of it reaches git or a file.

The controller is trusted, but a bug or a tampered proxy in between must not turn a sha into a
git option or a PR number into a path: every field is checked for its exact shape here, and the
rest of the agent only ever sees these typed values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

SHA = re.compile(r"^[0-9a-f]{40}$")
#: The environment token's shape (``secrets.token_urlsafe``): it travels in an HTTP header.
ENVIRONMENT_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,128}$")
#: GitHub's tokens (``ghs_...``) and the like: they travel in an HTTP header.
FETCH_TOKEN = re.compile(r"^[A-Za-z0-9_.-]{10,255}$")
#: git's scp-like SSH address, ``git@host:OWNER/NAME.git`` (the path never an option).
SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9][A-Za-z0-9.-]*:(?!-)[^\s:]\S*$")
_CLONE_SCHEMES = {"https", "http", "ssh", "git", "file"}
#: A repository secret's name: an environment variable name (the controller checks the rest).
SECRET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")


class InvalidAssignment(Exception):
    """The controller's answer is not something the agent will act on; the message says why."""


@dataclass(frozen=True)
class Database:
    host: str
    port: int
    user: str
    password: str
    name: str

    @property
    def url(self) -> str:
        """``mysql://`` URL for apps; user and password percent-encoded so any byte survives."""
        user = quote(self.user, safe="")
        password = quote(self.password, safe="")
        return f"mysql://{user}:{password}@{self.host}:{self.port}/{quote(self.name, safe='')}"


@dataclass(frozen=True)
class Defaults:
    port: int | None = None
    health_path: str | None = None
    start: tuple[str, ...] | None = None
    migrate: tuple[str, ...] | None = None
    build: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Assignment:
    environment_id: int
    repository: str
    clone_url: str
    pr_number: int
    head_sha: str
    head_ref: str
    redeploy: bool
    database: Database | None
    defaults: Defaults
    #: Someone asked for the deep smoke tier: run it (and fast) against the running app.
    run_deep_smoke: bool = False
    #: A new token for this environment's reports, or None: keep the one already held.
    environment_token: str | None = None
    #: The repository's secrets, name → value: exported to PR commands, masked in reports.
    secrets: dict[str, str] = field(default_factory=dict)
    #: Secrets the controller could not decrypt: the deploy fails naming them.
    unreadable_secrets: tuple[str, ...] = ()
    #: A read token for this repository, valid under an hour, for the fetch alone (git gets
    #: it through its environment; ``repr`` leaves it out, and nothing writes it to disk).
    fetch_token: str | None = field(default=None, repr=False)
    #: Why the controller had no fetch token to give, told if the fetch then fails.
    fetch_token_problem: str | None = None

    def why_secrets_unreadable(self) -> str:
        """The failed step's words: the app would run without values it expects."""
        return (
            "the controller cannot decrypt the repository secret(s) "
            f"{', '.join(self.unreadable_secrets)}: its [controller] secret_key changed since "
            "they were set; an admin sets them again"
        )

    @property
    def fetch_access(self) -> tuple[str | None, str | None]:
        """``Repo.fetch_pr``'s ``token`` and ``no_token_because``."""
        return self.fetch_token, self.fetch_token_problem


def parse(payload: object) -> Assignment | None:
    """The ``assignment`` member of ``GET /api/agent/assignment``; None when there is none."""
    if not isinstance(payload, dict) or "assignment" not in payload:
        raise InvalidAssignment("the answer has no 'assignment' member")
    body = payload["assignment"]
    if body is None:
        return None
    if not isinstance(body, dict):
        raise InvalidAssignment("'assignment' is neither null nor an object")
    sha = _field(body, "head_sha", str)
    if not SHA.fullmatch(sha):
        raise InvalidAssignment(f"head_sha {sha[:60]!r} is not 40 lowercase hex digits")
    return Assignment(
        environment_id=_positive(body, "environment_id"),
        repository=_field(body, "repository", str),
        clone_url=check_clone_url(_field(body, "clone_url", str)),
        pr_number=_positive(body, "pr_number"),
        head_sha=sha,
        head_ref=_field(body, "head_ref", str),
        redeploy=_field(body, "redeploy", bool),
        database=_database(body.get("database")),
        defaults=_defaults(body.get("defaults")),
        run_deep_smoke=_smoke_tier(body.get("smoke")) == "deep",
        environment_token=_environment_token(body.get("environment_token")),
        secrets=_secrets(body.get("secrets")),
        unreadable_secrets=tuple(_secret_names(body.get("unreadable_secrets"))),
        **_fetch_token(body.get("fetch_token")),
    )


def _secrets(value: object) -> dict[str, str]:
    """Absent from controllers older than repository secrets: none."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidAssignment("secrets is neither null nor an object")
    _secret_names(list(value))
    if not all(isinstance(v, str) and "\0" not in v for v in value.values()):
        raise InvalidAssignment("every secret's value must be a string without NUL")
    return dict(value)


def _secret_names(value: object) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(
        isinstance(name, str) and SECRET_NAME.fullmatch(name) for name in value
    ):
        raise InvalidAssignment("secret names must be environment variable names")
    return list(value)


def _fetch_token(value: object) -> dict[str, str | None]:
    """``{"token", "expires_at"}``, ``{"error"}`` or null; a malformed token is refused without
    being quoted, since it may be a real one."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidAssignment("fetch_token is neither null nor an object")
    token = value.get("token")
    if token is None:
        problem = value.get("error")
        return {"fetch_token_problem": str(problem)[:500] if problem else None}
    if not isinstance(token, str) or not FETCH_TOKEN.fullmatch(token):
        raise InvalidAssignment("fetch_token.token is not a token")
    return {"fetch_token": token}


def _environment_token(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not ENVIRONMENT_TOKEN.fullmatch(value):
        raise InvalidAssignment("environment_token is not a token")
    return value


def _smoke_tier(value: object) -> str:
    """Absent means fast: a controller older than on-demand smoke checks never asks for deep."""
    if value is None:
        return "fast"
    if value not in ("fast", "deep"):
        raise InvalidAssignment(f"smoke is {value!r}, expected 'fast' or 'deep'")
    return str(value)


def check_clone_url(url: str) -> str:
    """A URL git fetches from and nothing else: no option lookalike, no ``ext::`` transport."""
    if not url or url.startswith("-") or any(ord(char) < 32 for char in url):
        raise InvalidAssignment(f"clone_url {url[:200]!r} is not a repository address")
    if url.startswith("/") or SCP_LIKE.fullmatch(url):
        return url
    scheme = urlsplit(url).scheme
    if scheme not in _CLONE_SCHEMES:
        raise InvalidAssignment(
            f"clone_url {url[:200]!r}: expected one of {sorted(_CLONE_SCHEMES)}, user@host:path "
            "or an absolute path"
        )
    return url


def _field(body: dict[str, Any], key: str, kind: type) -> Any:
    value = body.get(key)
    # bool is an int subclass: a JSON true must not pass as a PR number.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidAssignment(f"{key} is {value!r}, expected {kind.__name__}")
    return value


def _positive(body: dict[str, Any], key: str) -> int:
    value: int = _field(body, key, int)
    if value < 1:
        raise InvalidAssignment(f"{key} is {value}, expected a positive number")
    return value


def _database(value: object) -> Database | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidAssignment("database is neither null nor an object")
    port = _positive(value, "port")
    if port > 65535:
        raise InvalidAssignment(f"database port {port} is out of range")
    return Database(
        host=_field(value, "host", str),
        port=port,
        user=_field(value, "user", str),
        password=_field(value, "password", str),
        name=_field(value, "name", str),
    )


def _defaults(value: object) -> Defaults:
    if value is None:
        return Defaults()
    if not isinstance(value, dict):
        raise InvalidAssignment("defaults is neither null nor an object")
    port = value.get("port")
    if port is not None and (
        not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535
    ):
        raise InvalidAssignment(f"defaults.port is {port!r}, expected a port number")
    health_path = value.get("health_path")
    if health_path is not None and (
        not isinstance(health_path, str) or not health_path.startswith("/")
    ):
        raise InvalidAssignment(f"defaults.health_path is {health_path!r}, expected /a/path")
    return Defaults(
        port=port,
        health_path=health_path,
        start=_argv(value, "start"),
        migrate=_argv(value, "migrate"),
        build=_argv(value, "build"),
    )


def _argv(body: dict[str, Any], key: str) -> tuple[str, ...] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(a, str) for a in value):
        raise InvalidAssignment(f"defaults.{key} is {value!r}, expected a list of strings")
    return tuple(value)
