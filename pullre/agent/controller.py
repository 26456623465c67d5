"""The controller's agent API as this box sees it: three JSON calls over urllib.

Failures are sorted by what the pass should do about them: ``ControllerUnavailable`` (no answer,
5xx) means "try again next pass, touch nothing"; ``NotAssigned`` (409 on a step) means "this
environment is no longer ours, stop quietly"; ``ControllerRefused`` (any other 4xx, e.g. a revoked
token) is a real error an operator must see.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from pullre.agent import AGENT_VERSION
from pullre.agent.assignment import Assignment, parse

#: The controller caps stored logs at 64 KiB too; sending more is wasted bandwidth.
LOG_LIMIT = 64 * 1024
STEPS = ("fetch", "checkout", "build", "migrate", "start", "health", "smoke")
STATUSES = ("running", "ok", "failed", "skipped")


class ControllerUnavailable(Exception):
    """No usable answer: unreachable, timed out, 5xx or not JSON."""


class ControllerRefused(Exception):
    """A 4xx other than the step's 409: the request itself (or the token) is wrong."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class NotAssigned(Exception):
    """409 on a step: the environment moved off this server while the pass was deploying it."""


def tail(text: str, limit: int = LOG_LIMIT) -> str:
    """The last ``limit`` bytes of ``text`` in UTF-8, cut on a character boundary."""
    data = text.encode("utf-8", errors="replace")
    if len(data) <= limit:
        return text
    return data[-limit:].decode("utf-8", errors="ignore")


@dataclass
class Controller:
    base_url: str
    token: str
    timeout: float = 10.0

    def assignment(self) -> Assignment | None:
        return parse(self._call("GET", "/api/agent/assignment"))

    def report_step(
        self,
        environment_id: int,
        head_sha: str,
        step: str,
        status: str,
        log: str = "",
        *,
        results: dict[str, Any] | None = None,
    ) -> None:
        """``results``: the smoke step's structured results (in ``pullre.smoke.runner``'s shape)."""
        if step not in STEPS or status not in STATUSES:
            raise ValueError(f"unknown step or status: {step!r} {status!r}")
        body: dict[str, Any] = {
            "environment_id": environment_id,
            "head_sha": head_sha,
            "step": step,
            "status": status,
            "log": tail(log),
        }
        if results is not None:
            body["results"] = results
        try:
            self._call("POST", "/api/agent/steps", body)
        except ControllerRefused as exc:
            if exc.status == 409:
                raise NotAssigned(str(exc)) from None
            raise

    def heartbeat(
        self,
        deployed_sha: str | None,
        app_running: bool,
        environment_id: int | None,
        *,
        app_in_use: bool | None = None,
        runs_as: str | None = None,
        dirty: str | None = None,
    ) -> None:
        """``app_in_use``: clients used the app since the last pass (``activity``); None when
        this box cannot tell. The controller counts True as activity of the environment.
        ``runs_as``: who runs PR code here (``app_user``, ``same_user`` or ``refused``);
        ``dirty``: why the last clean-up between two PRs failed, None when it did not."""
        self._call(
            "POST",
            "/api/agent/heartbeat",
            {
                "agent_version": AGENT_VERSION,
                "deployed_sha": deployed_sha,
                "app_running": app_running,
                "environment_id": environment_id,
                "app_in_use": app_in_use,
                "runs_as": runs_as,
                "dirty": dirty,
            },
        )

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - the URL's scheme is checked at load
            self.base_url + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/json",
                **({"Content-Type": "application/json"} if data is not None else {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                raw = response.read()
        except urllib.error.HTTPError as exc:
            message = _error_message(exc)
            if exc.code >= 500:
                raise ControllerUnavailable(
                    f"{method} {path}: HTTP {exc.code}: {message}"
                ) from None
            raise ControllerRefused(
                exc.code, f"{method} {path}: HTTP {exc.code}: {message}"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ControllerUnavailable(f"{method} {path}: {reason}") from None
        try:
            return json.loads(raw)
        except ValueError:
            raise ControllerUnavailable(f"{method} {path}: the answer is not JSON") from None


def _error_message(error: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(error.read())
    except (ValueError, OSError):
        return error.reason or ""
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])[:500]
    return error.reason or ""
