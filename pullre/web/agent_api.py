"""``/api/agent/...``: what staging agents call, each authenticated by its own server's token.

A token identifies exactly one server and sees only that server's assignment; it grants
nothing else in the app (the login gate lets these endpoints through, and they check the token
themselves). Staging boxes run untrusted PR code, so a leaked agent token must not reach more:
a report about an environment (a step, smoke results, a heartbeat naming it) must also carry
that environment's own token (``X-Pullre-Environment-Token``, see
``pullre.environments.tokens``), which the assignment hands out and release voids.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import BadRequest, Unauthorized

from pullre.clock import system_clock
from pullre.config import Settings
from pullre.environments import deploys, tokens
from pullre.models import Environment, Server, StepStatus
from pullre.servers.registry import find_server_by_token
from pullre.smoke import results as smoke
from pullre.web import agent_bundle, fetch_tokens
from pullre.web.db_session import READ_FACTORY_KEY, get_session
from pullre.web.rate_limit import RateLimiter, retry_after
from pullre.web.request_clock import clock

blueprint = Blueprint("agent_api", __name__, url_prefix="/api/agent")
#: The longest an assignment request may wait for a change.
MAX_WAIT_S = 60.0
#: How often a waiting request looks at the database.
POLL_INTERVAL_S = 1.0
#: What an agent that found no free wait slot is told to sleep before asking again.
NO_SLOT_RETRY_S = 5
#: ``app.extensions`` key of the semaphore bounding waiting assignment requests.
WAIT_SLOTS_KEY = "pullre.agent_wait_slots"
#: ``app.extensions`` key of the per-server :class:`RateLimiter` (tests put their own there).
RATE_LIMIT_KEY = "pullre.agent_rate_limit"
#: Who runs PR code on a box, as its agent says (``pullre.agent.app_user``'s modes).
RUNS_AS = ("app_user", "same_user", "refused")
#: Assignment members that change without the work changing (a renewed fetch token...).
_ONE_OFF = ("environment_token", "fetch_token")


def _error(message: str, status: int) -> tuple[Response, int]:
    return jsonify(error=message), status


@blueprint.before_request
def _authenticate() -> tuple[Response, int] | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return _error("an agent token is required (Authorization: Bearer TOKEN)", 401)
    server = find_server_by_token(get_session(), token.strip())
    if server is None:
        return _error("unknown agent token", 401)
    g.agent_server = server
    limiter: RateLimiter = current_app.extensions.setdefault(RATE_LIMIT_KEY, RateLimiter())
    wait = limiter.take(server.id)
    if wait > 0:
        response, status = _error(
            f"too many calls from this server (at most {limiter.burst} at once, then "
            f"{limiter.per_second:g} a second); retry after {retry_after(wait)} s",
            429,
        )
        response.headers["Retry-After"] = retry_after(wait)
        return response, status
    return None


def _server() -> Server:
    server: Server = g.agent_server
    return server


def _body() -> dict[str, Any]:
    try:
        body = request.get_json(force=True)
    except BadRequest:
        body = None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _field(body: dict[str, Any], name: str, kind: type, *, optional: bool = False) -> Any:
    value = body.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise BadRequest(f"{name!r} must be a {kind.__name__}")
    return value


def _environment_id(body: dict[str, Any], *, optional: bool = False) -> int | None:
    """The environment a report is about, once its own token proves the agent was given it.

    A token of a released stay, of another server's environment or none at all is refused
    alike (401): the server token alone says nothing about an environment.
    """
    environment_id: int | None = _field(body, "environment_id", int, optional=optional)
    if environment_id is None:
        return None
    environment = get_session().get(Environment, environment_id)
    presented = request.headers.get(tokens.HEADER, "").strip()
    if (
        environment is None
        or environment.server_id != _server().id
        or not tokens.holds(environment, presented)
    ):
        raise Unauthorized(
            f"environment {environment_id}: its current environment token is required "
            f"({tokens.HEADER}); a released environment's token is void"
        )
    return environment_id


@blueprint.errorhandler(BadRequest)
def _bad_request(error: BadRequest) -> tuple[Response, int]:
    return _error(error.description or "bad request", 400)


@blueprint.errorhandler(Unauthorized)
def _unauthorized(error: Unauthorized) -> tuple[Response, int]:
    return _error(error.description or "unauthorized", 401)


@blueprint.get("/assignment")
def assignment() -> Response:
    """This server's assignment and its ``digest``; ``?wait=S&known=DIGEST`` waits up to S s.

    ``environment_token`` in the answer is set when the agent must take a new one (a new
    stay, or it presented none or a stale one in ``X-Pullre-Environment-Token``).

    An agent in ``--loop`` passes the digest it acts on as ``known``: the answer comes as soon
    as the assignment differs (a push, a redeploy, a wake, a reset, a release), else after
    ``wait`` seconds. The wait watches the database, polling it once a second in a short read
    of its own, so a change made by any controller replica reaches an agent waiting on another.
    Waiting requests hold a server thread each, so at most ``[controller] agent_wait_slots``
    wait at once; past that the answer comes at once with ``retry_after`` seconds for the agent
    to sleep before it asks again, and pages never queue behind agents.

    ``agent`` names the agent bundle this controller serves (``GET /api/agent/bundle``).
    """
    wait = _wait_seconds()
    known = request.args.get("known", "")
    presented = request.headers.get(tokens.HEADER, "").strip() or None
    session = get_session()
    found = _current(session, presented)
    if found is not None and found["environment_token"] is not None:
        session.commit()  # only the hash is kept; the token itself is in this answer only
    digest = _digest(found)
    retry = None
    if wait > 0 and digest == known and (found is None or found["environment_token"] is None):
        session.commit()  # hold no transaction while waiting
        slots: threading.BoundedSemaphore = current_app.extensions[WAIT_SLOTS_KEY]
        if slots.acquire(blocking=False):
            try:
                changed = _wait_for_change(presented, known, time.monotonic() + wait)
            finally:
                slots.release()
            if changed:
                found = _current(session, presented)
                if found is not None and found["environment_token"] is not None:
                    session.commit()
                digest = _digest(found)
        else:
            retry = NO_SLOT_RETRY_S
    return jsonify(assignment=found, digest=digest, retry_after=retry, agent=agent_bundle.offer())


@blueprint.get("/bundle")
def bundle() -> Response:
    """The agent bundle this controller serves; an agent updates itself from it."""
    return agent_bundle.response(request)


def _wait_seconds() -> float:
    raw = request.args.get("wait", "0")
    try:
        wait = float(raw)
    except ValueError:
        raise BadRequest("'wait' must be a number of seconds") from None
    if not 0 <= wait <= MAX_WAIT_S:
        raise BadRequest(f"'wait' must be between 0 and {MAX_WAIT_S} seconds")
    return wait


def _current(session: Session, presented: str | None) -> dict[str, Any] | None:
    settings: Settings = current_app.extensions["pullre.settings"]
    return deploys.assignment(
        session,
        _server(),
        staging_mysql_url=settings.staging_mysql.url,
        secret_key=current_app.config["SECRET_KEY"],
        github_api_url=settings.github.api_url,
        presented_token=presented,
        fetch_token=fetch_tokens.for_repository,
    )


def _digest(found: dict[str, Any] | None) -> str:
    """What the agent acts on, without the one-off tokens: equal digests, nothing to do."""
    kept = None if found is None else {k: v for k, v in found.items() if k not in _ONE_OFF}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:32]


def _wait_for_change(presented: str | None, known: str, deadline: float) -> bool:
    """Poll in short read transactions until the digest differs from ``known`` or time is up."""
    read_factory: sessionmaker[Session] = current_app.extensions[READ_FACTORY_KEY]
    server_id = _server().id
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(POLL_INTERVAL_S, left))
        with read_factory() as reader, reader.no_autoflush:
            server = reader.get(Server, server_id)
            if server is None:
                return True
            found = deploys.assignment(
                reader, server, staging_mysql_url=_settings().staging_mysql.url,
                secret_key=current_app.config["SECRET_KEY"],
                github_api_url=_settings().github.api_url, presented_token=presented,
            )  # fmt: skip
            # A token that would be issued now is news as well (the stay changed under it).
            issued = found is not None and found["environment_token"] is not None
            reader.rollback()  # drop what assignment() set in memory; nothing is written
        if issued or _digest(found) != known:
            return True
    return False


def _settings() -> Settings:
    settings: Settings = current_app.extensions["pullre.settings"]
    return settings


@blueprint.post("/steps")
def steps() -> Response | tuple[Response, int]:
    body = _body()
    step = _field(body, "step", str)
    if step not in deploys.STEPS:
        raise BadRequest(f"'step' must be one of {', '.join(deploys.STEPS)}")
    try:
        status = StepStatus(_field(body, "status", str))
    except ValueError:
        raise BadRequest(
            f"'status' must be one of {', '.join(s.value for s in StepStatus)}"
        ) from None
    head_sha = _field(body, "head_sha", str)
    if len(head_sha) != 40 or not all(c in "0123456789abcdef" for c in head_sha):
        raise BadRequest("'head_sha' must be 40 lowercase hex digits")
    results = _results(body, step)
    environment_id = _environment_id(body)
    assert environment_id is not None
    session = get_session()
    try:
        deploys.record_step(
            session,
            _server(),
            environment_id=environment_id,
            head_sha=head_sha,
            step=step,
            status=status,
            log=_field(body, "log", str, optional=True) or "",
            details=results,
            clock=system_clock,
        )
    except deploys.NotYourEnvironment as exc:
        session.rollback()
        return _error(str(exc), 409)
    session.commit()
    return jsonify(ok=True)


def _results(body: dict[str, Any], step: str) -> dict[str, Any] | None:
    """The optional structured ``results`` of a smoke step, checked against the runner's shape.

    Size is capped like the log: the dashboard renders it, and an agent runs beside PR code.
    """
    results = body.get("results")
    if results is None:
        return None
    if step != "smoke":
        raise BadRequest("'results' are only taken with the smoke step")
    if len(json.dumps(results)) > smoke.RESULTS_LIMIT:
        raise BadRequest(f"'results' must be at most {smoke.RESULTS_LIMIT} bytes of JSON")
    problem = smoke.validate_results(results)
    if problem is not None:
        raise BadRequest(f"'results' is not in the smoke results shape: {problem}")
    assert isinstance(results, dict)
    return results


@blueprint.post("/heartbeat")
def heartbeat() -> Response:
    """``app_in_use`` (true, false, or null/absent from agents that cannot tell) counts as the
    serving environment's activity when true: a reviewer is using the staging app itself.
    One naming an ``environment_id`` needs that environment's token; one naming none only the
    server's. ``runs_as`` says who runs PR code on the box; ``dirty`` (a reason) marks the server
    dirty."""
    body = _body()
    environment_id = _environment_id(body, optional=True)
    session = get_session()
    deploys.record_heartbeat(
        session,
        _server(),
        agent_version=_field(body, "agent_version", str),
        deployed_sha=_field(body, "deployed_sha", str, optional=True),
        environment_id=environment_id,
        app_in_use=_field(body, "app_in_use", bool, optional=True),
        runs_as=_runs_as(body),
        dirty=_field(body, "dirty", str, optional=True),
        clock=clock(),
    )
    session.commit()
    return jsonify(ok=True)


def _runs_as(body: dict[str, Any]) -> str | None:
    value = _field(body, "runs_as", str, optional=True)
    if value is not None and value not in RUNS_AS:
        raise BadRequest(f"'runs_as' must be one of {', '.join(RUNS_AS)}")
    return value  # type: ignore[no-any-return]
