"""``/api/agent/...``: what staging agents call, each authenticated by its own server's token.

A token identifies exactly one server and sees only that server's assignment; it grants
nothing else in the app (the login gate lets these endpoints through, and they check the token
themselves). Staging boxes run untrusted PR code, so a leaked agent token must not reach more:
a report about an environment (a step, smoke results, a heartbeat naming it) must also carry
that environment's own token (``X-Pullre-Environment-Token``, see
``pullre.environments.tokens``), which the assignment hands out and release voids.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from werkzeug.exceptions import BadRequest, Unauthorized

from pullre.clock import system_clock
from pullre.environments import agent_reports, deploys, tokens
from pullre.models import Environment, Server, StepStatus
from pullre.servers.registry import find_server_by_token
from pullre.smoke import results as smoke
from pullre.web import agent_bundle, assignment_wait
from pullre.web.db_session import get_session
from pullre.web.rate_limit import RateLimiter, retry_after
from pullre.web.request_clock import clock

blueprint = Blueprint("agent_api", __name__, url_prefix="/api/agent")
#: ``app.extensions`` key of the per-server :class:`RateLimiter` (tests put their own there).
RATE_LIMIT_KEY = "pullre.agent_rate_limit"
#: Who runs PR code on a box, as its agent says (``pullre.agent.app_user``'s modes).
RUNS_AS = ("app_user", "same_user", "refused")


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
    """This server's assignment and its ``digest``; ``?wait=S&known=DIGEST`` waits up to S s
    for it to change (see :mod:`pullre.web.assignment_wait`).

    ``environment_token`` in the answer is set when the agent must take a new one (a new
    stay, or it presented none or a stale one in ``X-Pullre-Environment-Token``).
    ``agent`` names the agent bundle this controller serves (``GET /api/agent/bundle``).
    """
    try:
        wait = assignment_wait.seconds(request.args.get("wait", "0"))
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    found, digest, retry = assignment_wait.answer(
        get_session(),
        _server(),
        presented=request.headers.get(tokens.HEADER, "").strip() or None,
        known=request.args.get("known", ""),
        wait=wait,
    )
    return jsonify(assignment=found, digest=digest, retry_after=retry, agent=agent_bundle.offer())


@blueprint.get("/bundle")
def bundle() -> Response:
    """The agent bundle this controller serves; an agent updates itself from it."""
    return agent_bundle.response(request)


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
        agent_reports.record_step(
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
    agent_reports.record_heartbeat(
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
