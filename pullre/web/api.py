"""``/api/v1``: the JSON API for people's scripts, authenticated by personal API tokens.

Only ``Authorization: Bearer`` counts here. The login gate lets this blueprint through without
reading the session, and these views never look at ``current_user``: a browser's login cookie
rides along on cross-site requests, a header does not, so a logged-in admin's browser cannot be
made to call the API (which is why the blueprint is exempt from CSRF). The token acts with its
owner's current role, read afresh on every request.

Every answer is JSON, errors included: ``{"error": message}`` with the HTTP status saying what
kind (400 bad input, 401 no or bad token, 403 role, 404 unknown id, 405 method, 409 refused).

Reading one PR, or acting on it, is activity: its environment's idle-sleep and expiry clocks
start over, as when a person opens its page. Lists are not: a script polling them is nobody
looking at an environment.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from sqlalchemy import func, select
from werkzeug.exceptions import BadRequest, Forbidden, HTTPException, NotFound

from pullre.accounts import api_tokens
from pullre.config import Settings
from pullre.identifiers import split_full_name
from pullre.models import ApiToken, Event, Repository
from pullre.policies.savings import PoolPolicies
from pullre.servers.registry import server_rows
from pullre.web import activity, api_by_number
from pullre.web.api_pulls import (
    STATUS_FILTERS,
    Policies,
    PullFilter,
    event_json,
    iso,
    list_pulls,
    pull_detail,
)
from pullre.web.auth import SessionUser
from pullre.web.bounded_numbers import query_int
from pullre.web.db_session import get_session, writing
from pullre.web.page_cache import page_cache
from pullre.web.request_clock import clock

blueprint = Blueprint("api", __name__, url_prefix="/api/v1")

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 200


def json_error(message: str, status: int) -> tuple[Response, int]:
    return jsonify(error=message), status


@blueprint.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> tuple[Response, int]:
    """JSON whatever the client's Accept header says: scripts parse, they do not read."""
    return json_error(error.description or error.name, error.code or 500)


@blueprint.before_request
def _authenticate() -> tuple[Response, int] | None:
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    found = None
    if scheme.lower() == "bearer" and secret.strip():
        found = api_tokens.owner(get_session(), secret.strip())
    if found is None:
        response, status = json_error(
            "a valid API token is required (Authorization: Bearer TOKEN; "
            "create one on the API tokens page)",
            401,
        )
        response.headers["WWW-Authenticate"] = 'Bearer realm="pullre"'
        return response, status
    token, user = found
    g.api_user = SessionUser.of(user)
    now = clock()()
    if api_tokens.due_for_marking(token, now):
        _mark_used(token.id, now)
    return None


def _mark_used(token_id: int, now: datetime) -> None:
    """In a short write transaction of its own, so a GET's reads stay deferred (see db_session)."""
    with writing() as session:
        token = session.get(ApiToken, token_id)
        if token is not None:
            api_tokens.mark_used(token, now)


def token_user() -> SessionUser:
    user: SessionUser = g.api_user
    return user


def require_admin() -> None:
    if not token_user().is_admin:
        raise Forbidden("this needs an admin's token")


def _policies() -> Policies:
    settings: Settings = current_app.extensions["pullre.settings"]
    return Policies(
        ttl=PoolPolicies.from_settings(settings.pool).ttl,
        currency=settings.cost.currency,
        now=clock()(),
    )


def _paging() -> tuple[int, int]:
    page = query_int("page", 1) or 1
    per_page = min(query_int("per_page", DEFAULT_PER_PAGE) or DEFAULT_PER_PAGE, MAX_PER_PAGE)
    return page, per_page


def _page(items: list[dict[str, Any]], total: int, page: int, per_page: int) -> Response:
    return jsonify(items=items, page=page, per_page=per_page, total=total)


@blueprint.get("/pulls")
def pulls() -> Response:
    repository = request.args.get("repository", "").strip() or None
    status = request.args.get("status", "").strip() or None
    try:
        wanted = PullFilter(
            repository=split_full_name(repository) if repository else None, status=status
        )
    except ValueError as exc:
        raise BadRequest(f"'repository': {exc}") from None
    if status is not None and status not in STATUS_FILTERS:
        raise BadRequest(f"'status' must be one of {', '.join(STATUS_FILTERS)}")
    page, per_page = _paging()
    policies = _policies()
    items, total = page_cache().get(
        ("api pulls", wanted, page, per_page),
        lambda: list_pulls(get_session(), wanted, page=page, per_page=per_page, policies=policies),
        now=policies.now,  # idle times, expiry and cost so far are as of the request
    )
    return _page(items, total, page, per_page)


@blueprint.get("/pulls/<int:pull_id>")
def pull(pull_id: int) -> Response:
    activity.touch(pull_id)
    session = get_session()
    detail = pull_detail(session, pull_id, _policies())
    if detail is None:
        raise NotFound(f"no pull request with id {pull_id}")
    return jsonify(detail)


@blueprint.get("/repos/<owner>/<name>/pulls/<int:number>")
@blueprint.post("/repos/<owner>/<name>/pulls/<int:number>/<action>")
def by_number(owner: str, name: str, number: int, action: str | None = None) -> Any:
    """The PR routes by repository and PR number, beside the id routes (see api_by_number)."""
    return api_by_number.dispatch(blueprint.url_prefix or "", owner, name, number, action)


@blueprint.get("/servers")
def servers() -> Response:
    require_admin()
    items = [
        {
            "id": row.server.id,
            "instance_id": row.server.instance_id,
            "name": row.server.name,
            "staging_url": row.server.staging_url,
            "state": row.server.observed_state,
            "observed_at": iso(row.server.observed_at),
            "held_by": row.held_by,
            "environment_status": row.environment_status,
            "last_heartbeat": iso(row.server.last_heartbeat),
            "deployed_sha": row.server.deployed_sha,
            "agent_version": row.server.agent_version,
            "last_error": row.server.last_error,
        }
        for row in server_rows(get_session())
    ]
    return jsonify(items=items)


@blueprint.get("/repositories")
def repositories() -> Response:
    found = get_session().scalars(select(Repository).order_by(Repository.owner, Repository.name))
    items = [
        {
            "id": repo.id,
            "repository": repo.full_name,
            "enabled": repo.enabled,
            "base_schema": repo.base_schema,
            "required_label": repo.required_label,
            "trust": repo.trust.value,
            "approvers": repo.approvers.value,
        }
        for repo in found
    ]
    return jsonify(items=items)


@blueprint.get("/events")
def event_log() -> Response:
    """Newest first; ``pull`` and ``server`` are the ids the other endpoints return."""
    conditions = []
    if kind := request.args.get("kind", "").strip():
        conditions.append(Event.kind == kind)
    if (pull_id := query_int("pull")) is not None:
        conditions.append(Event.pull_request_id == pull_id)
    if (server_id := query_int("server")) is not None:
        conditions.append(Event.server_id == server_id)
    page, per_page = _paging()
    session = get_session()
    total = session.scalar(select(func.count()).select_from(Event).where(*conditions)) or 0
    found = session.scalars(
        select(Event)
        .where(*conditions)
        .order_by(Event.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return _page([event_json(event) for event in found], total, page, per_page)
