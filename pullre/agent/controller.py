"""The controller's agent API as this box sees it: three JSON calls over urllib, and the bundle.

Failures are sorted by what the pass should do about them: ``ControllerUnavailable`` (no answer,
5xx, or 429: this server called too often) means "try again next pass, touch nothing";
``NotAssigned`` (409 on a step, or 401: the environment's token was voided by its release) means
"this environment is no longer ours, stop quietly"; ``ControllerRefused`` (any other 4xx, e.g. a
revoked server token) is a real error an operator must see.

Two tokens: the server's (``Authorization: Bearer``) on every call, and the environment's
(``X-Pullre-Environment-Token``) that an assignment hands out, on every call once known.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from pullre.agent import bundle
from pullre.agent.assignment import Assignment, parse
from pullre.agent.masking import mask, mask_json, masked_values

#: The header that carries the environment's token.
ENVIRONMENT_HEADER = "X-Pullre-Environment-Token"
#: The controller caps stored logs at 64 KiB too; sending more is wasted bandwidth.
LOG_LIMIT = 64 * 1024
STEPS = ("fetch", "checkout", "build", "migrate", "start", "health", "smoke")
STATUSES = ("running", "ok", "failed", "skipped")
#: The largest agent bundle taken from the controller (it is about 200 KB).
BUNDLE_LIMIT = 16 * 1024 * 1024


class ControllerUnavailable(Exception):
    """No usable answer: unreachable, timed out, 5xx, rate limited (429) or not JSON."""


class ControllerRefused(Exception):
    """A 4xx other than the step's 409: the request itself (or the token) is wrong."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class BundleOffer:
    """The agent the controller serves (``agent`` in the assignment answer)."""

    version: str
    sha256: str


def parse_offer(payload: Any) -> BundleOffer | None:
    """The answer's ``agent`` member, None when absent (an older controller) or malformed."""
    offer = payload.get("agent") if isinstance(payload, dict) else None
    if not isinstance(offer, dict):
        return None
    version, digest = offer.get("version"), offer.get("sha256")
    if not isinstance(version, str) or not isinstance(digest, str):
        return None
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        return None
    return BundleOffer(version=version[:40], sha256=digest)


class NotAssigned(Exception):
    """409 or 401 on a step: the environment moved off this server (or was released, voiding
    its token) while the pass was deploying it."""


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
    #: The current environment's token: presented when asking (so the controller knows it need
    #: not make a new one) and sent with every report. Replaced by a new one an answer brings.
    environment_token: str | None = None
    #: The controller's digest of the last assignment fetched: what this box acts on.
    digest: str | None = None
    #: The last assignment's secret values (``masking.masked_values``): no report carries them.
    secret_values: tuple[str, ...] = ()
    #: The agent bundle the controller offered in its last assignment answer.
    offer: BundleOffer | None = None

    def assignment(self) -> Assignment | None:
        payload = self._call("GET", "/api/agent/assignment")
        found = parse(payload)
        self.offer = parse_offer(payload)
        digest = payload.get("digest") if isinstance(payload, dict) else None
        self.digest = digest if isinstance(digest, str) and digest else None
        self.secret_values = masked_values(found.secrets.values()) if found else ()
        if found is None:
            self.environment_token = None
        elif found.environment_token is not None:
            self.environment_token = found.environment_token
        return found

    def wait_for_change(self, seconds: float) -> float | None:
        """Wait up to ``seconds`` for the assignment to differ from the last one fetched.

        Returns how long to sleep before the next pass: 0 when the wait ended (a change, or
        time up), the controller's ``retry_after`` when it had no free wait slot, or None when
        it cannot wait at all (an older controller, or no assignment fetched yet), so the
        caller falls back to its own interval.
        """
        if self.digest is None:
            return None
        path = f"/api/agent/assignment?wait={seconds:g}&known={self.digest}"
        payload = self._call("GET", path, timeout=seconds + self.timeout)
        retry = payload.get("retry_after") if isinstance(payload, dict) else None
        if isinstance(retry, int | float) and not isinstance(retry, bool) and retry > 0:
            return float(min(retry, 60))
        return 0.0

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
        """``results``: the smoke step's structured results (in ``pullre.smoke.runner``'s shape).

        The one way a step's output leaves the box, so secrets are masked here (``mask``).
        """
        if step not in STEPS or status not in STATUSES:
            raise ValueError(f"unknown step or status: {step!r} {status!r}")
        body: dict[str, Any] = {
            "environment_id": environment_id,
            "head_sha": head_sha,
            "step": step,
            "status": status,
            "log": tail(self.mask(log)),
        }
        if results is not None:
            body["results"] = mask_json(results, self.secret_values)
        try:
            self._call("POST", "/api/agent/steps", body)
        except ControllerRefused as exc:
            if exc.status in {401, 409}:  # the server token worked for the assignment
                raise NotAssigned(str(exc)) from None
            raise

    def mask(self, text: str) -> str:
        """``text`` with the current assignment's secret values as ``***``."""
        return mask(text, self.secret_values) if self.secret_values else text

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
                "agent_version": bundle.identity(),
                "deployed_sha": deployed_sha,
                "app_running": app_running,
                "environment_id": environment_id,
                "app_in_use": app_in_use,
                "runs_as": runs_as,
                "dirty": dirty,
            },
        )

    def bundle(self) -> bytes:
        """The controller's agent bundle, unchecked: the caller compares its hash."""
        data = self._request(
            "GET", "/api/agent/bundle", None, accept="application/zip", limit=BUNDLE_LIMIT
        )
        if len(data) > BUNDLE_LIMIT:
            raise ControllerUnavailable(f"the agent bundle is over {BUNDLE_LIMIT} bytes")
        return data

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> Any:
        raw = self._request(method, path, body, timeout=timeout)
        try:
            return json.loads(raw)
        except ValueError:
            raise ControllerUnavailable(f"{method} {path}: the answer is not JSON") from None

    def _request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        *,
        timeout: float | None = None,
        accept: str = "application/json",
        limit: int | None = None,
    ) -> bytes:
        """The answer's body; at most ``limit`` + 1 bytes are read when a limit is given."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - the URL's scheme is checked at load
            self.base_url + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                **({ENVIRONMENT_HEADER: self.environment_token} if self.environment_token else {}),
                "Accept": accept,
                **({"Content-Type": "application/json"} if data is not None else {}),
            },
        )
        try:
            with urllib.request.urlopen(  # noqa: S310
                request, timeout=timeout or self.timeout
            ) as response:
                raw: bytes = response.read() if limit is None else response.read(limit + 1)
        except urllib.error.HTTPError as exc:
            message = _error_message(exc)
            if exc.code >= 500 or exc.code == 429:  # 429: rate limited; the next pass asks again
                raise ControllerUnavailable(
                    f"{method} {path}: HTTP {exc.code}: {message}"
                ) from None
            raise ControllerRefused(
                exc.code, f"{method} {path}: HTTP {exc.code}: {message}"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ControllerUnavailable(f"{method} {path}: {reason}") from None
        return raw


def _error_message(error: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(error.read())
    except (ValueError, OSError):
        return error.reason or ""
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])[:500]
    return error.reason or ""
