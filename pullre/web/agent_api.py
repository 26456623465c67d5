"""``/api/agent/...``: what staging agents call, each authenticated by its own server's token.

A token identifies exactly one server and sees only that server's assignment; it grants
nothing else in the app (the login gate lets these endpoints through, and they check the token
themselves). Staging boxes run untrusted PR code, so a leaked agent token must not reach more.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from werkzeug.exceptions import BadRequest

from pullre.clock import system_clock
from pullre.config import Settings
from pullre.environments import deploys
from pullre.models import Server, StepStatus
from pullre.servers.registry import find_server_by_token
from pullre.smoke import runner as smoke
from pullre.web.db_session import get_session
from pullre.web.request_clock import clock

blueprint = Blueprint("agent_api", __name__, url_prefix="/api/agent")
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


@blueprint.errorhandler(BadRequest)
def _bad_request(error: BadRequest) -> tuple[Response, int]:
    return _error(error.description or "bad request", 400)


@blueprint.get("/assignment")
def assignment() -> Response:
    settings: Settings = current_app.extensions["pullre.settings"]
    found = deploys.assignment(
        get_session(),
        _server(),
        staging_mysql_url=settings.staging_mysql.url,
        secret_key=current_app.config["SECRET_KEY"],
        github_api_url=settings.github.api_url,
    )
    return jsonify(assignment=found)


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
    session = get_session()
    try:
        deploys.record_step(
            session,
            _server(),
            environment_id=_field(body, "environment_id", int),
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
    ``runs_as`` says who runs PR code on the box; ``dirty`` (a reason) marks the server dirty."""
    body = _body()
    session = get_session()
    deploys.record_heartbeat(
        session,
        _server(),
        agent_version=_field(body, "agent_version", str),
        deployed_sha=_field(body, "deployed_sha", str, optional=True),
        environment_id=_field(body, "environment_id", int, optional=True),
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
