"""Reading ``[[smoke]]`` entries of ``.pullre.toml`` into checks (see ``pullre.smoke.runner``).

Standard library only: the staging agent imports this. An entry that cannot be used is still a
``Check``, one without a spec and with the problem in words, so the run reports it as an
``error`` result: a typo in a check must show up red, never as one check fewer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pullre.smoke.checks import Command, Http, Smoketest, Sql, Target, Tcp
from pullre.smoke.formats import FORMATS, Outcome

TIERS = ("fast", "deep")
TYPES = ("http", "tcp", "sql", "command", "smoketest")
DEFAULT_TIMEOUT_S = 10.0
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
_COMMON = {"name", "tier", "type", "timeout", "severity"}
_KEYS = {
    "http": {"path", "url", "method", "status", "contains", "regex", "headers"},
    "tcp": {"address", "host", "port"},
    "sql": {"query", "expect"},
    "command": {"command"},
    "smoketest": {"path", "url", "format"},
}


class Spec(Protocol):
    def run(self, target: Target, deadline: float) -> Outcome: ...


@dataclass(frozen=True)
class Check:
    name: str
    tier: str
    type: str
    spec: Spec | None  # None: the entry was invalid; ``problem`` says why
    timeout: float = DEFAULT_TIMEOUT_S
    warn_only: bool = False
    problem: str = ""


class _Invalid(ValueError):
    pass


def parse_checks(raw: object) -> tuple[Check, ...]:
    """The ``smoke`` value of a parsed ``.pullre.toml``: a check (maybe invalid) per entry."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        return (Check("smoke", "fast", "config", None, problem="smoke must be [[smoke]] tables"),)
    checks = []
    names: set[str] = set()
    for index, entry in enumerate(raw):
        check = _parse_entry(index, entry)
        if check.name in names and check.spec is not None:
            check = Check(check.name, check.tier, check.type, None, problem="duplicate name")
        names.add(check.name)
        checks.append(check)
    return tuple(checks)


def _parse_entry(index: int, entry: object) -> Check:
    label = f"smoke[{index}]"
    if not isinstance(entry, dict):
        return Check(label, "fast", "config", None, problem=f"{label} is not a table")
    name = entry.get("name")
    name = name.strip()[:100] if isinstance(name, str) and name.strip() else label
    tier = entry.get("tier", "fast")
    kind = entry.get("type")
    kind_text = kind if isinstance(kind, str) and kind in TYPES else "config"
    try:
        if tier not in TIERS:
            raise _Invalid(f"tier must be one of {', '.join(TIERS)}, got {tier!r}")
        if kind not in TYPES:
            raise _Invalid(f"type must be one of {', '.join(TYPES)}, got {kind!r}")
        unknown = sorted(set(entry) - _COMMON - _KEYS[kind])
        if unknown:
            raise _Invalid(f"unknown key(s) for a {kind} check: {', '.join(unknown)}")
        timeout = entry.get("timeout", DEFAULT_TIMEOUT_S)
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
            raise _Invalid(f"timeout must be seconds above 0, got {timeout!r}")
        severity = entry.get("severity", "fail")
        if severity not in {"fail", "warn"}:
            raise _Invalid(f"severity must be fail or warn, got {severity!r}")
        spec = _SPECS[kind](entry)
    except _Invalid as exc:
        return Check(
            name, tier if tier in TIERS else "fast", kind_text, None, problem=f"{label}: {exc}"
        )
    return Check(name, tier, kind, spec, float(timeout), severity == "warn")


def _text(entry: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    value = entry.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise _Invalid(f"{key} must be a non-empty string")
    return value


def _url(entry: dict[str, Any]) -> str:
    path, url = _text(entry, "path"), _text(entry, "url")
    if (path is None) == (url is None):
        raise _Invalid("give exactly one of path or url")
    if path is not None:
        if not path.startswith("/") or not path.isprintable() or " " in path:
            raise _Invalid(f"path must start with / and hold no spaces, got {path!r}")
        return path
    assert url is not None
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url):
        raise _Invalid(f"url must be an http(s) URL, got {url!r}")
    return url


def _http(entry: dict[str, Any]) -> Http:
    method = (_text(entry, "method") or "GET").upper()
    if method not in _METHODS:
        raise _Invalid(f"method must be one of {', '.join(sorted(_METHODS))}")
    status = entry.get("status", 200)
    statuses = status if isinstance(status, list) else [status]
    if not statuses or not all(
        isinstance(s, int) and not isinstance(s, bool) and 100 <= s <= 599 for s in statuses
    ):
        raise _Invalid(f"status must be an HTTP status or a list of them, got {status!r}")
    regex = _text(entry, "regex")
    try:
        pattern = re.compile(regex) if regex is not None else None
    except re.error as exc:
        raise _Invalid(f"regex does not compile: {exc}") from None
    headers = entry.get("headers", {})
    if not isinstance(headers, dict) or not all(
        isinstance(v, str) and "\n" not in v and "\r" not in v for v in headers.values()
    ):
        raise _Invalid("headers must be a table of strings")
    return Http(
        _url(entry), method, tuple(statuses), _text(entry, "contains"), pattern,
        tuple(headers.items()),
    )  # fmt: skip


def _tcp(entry: dict[str, Any]) -> Tcp:
    address = _text(entry, "address")
    if address is not None:
        host, _, port_text = address.rpartition(":")
        if not host or not port_text.isdigit():
            raise _Invalid(f"address must be host:port, got {address!r}")
        port: object = int(port_text)
    else:
        host = _text(entry, "host") or "127.0.0.1"
        port = entry.get("port")
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise _Invalid(f"port must be a port number, got {port!r}")
    return Tcp(host.strip("[]"), port)


def _sql(entry: dict[str, Any]) -> Sql:
    query = _text(entry, "query", required=True)
    assert query is not None
    expect = entry.get("expect")
    if expect is not None and not isinstance(expect, str | int | float | bool):
        raise _Invalid("expect must be a string or a number")
    if isinstance(expect, bool):
        expect = int(expect)  # MySQL prints a boolean as 1 or 0
    return Sql(query, None if expect is None else str(expect))


def _command(entry: dict[str, Any]) -> Command:
    value = entry.get("command")
    if isinstance(value, str) and value.strip():
        return Command(("sh", "-c", value))
    if isinstance(value, list) and value and all(isinstance(a, str) for a in value) and value[0]:
        return Command(tuple(value))
    raise _Invalid("command must be a list of strings (argv) or a command line string")


def _smoketest(entry: dict[str, Any]) -> Smoketest:
    fmt = entry.get("format", "auto")
    if fmt not in FORMATS:
        raise _Invalid(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return Smoketest(_url(entry), fmt)


_SPECS: dict[str, Callable[[dict[str, Any]], Spec]] = {
    "http": _http,
    "tcp": _tcp,
    "sql": _sql,
    "command": _command,
    "smoketest": _smoketest,
}
