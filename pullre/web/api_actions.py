"""``/api/v1/pulls/ID/ACTION``: what a script may do to one PR, as its token's owner.

Each action is recorded as the token's owner and carried out by the agent and the next pass;
a refusal is a 409 with the reason. Acting on a PR is activity (its idle-sleep and expiry
clocks start over). Who may do what (admins only, the PR's author for pinning, approvers as
``trust.approval`` says) is checked here whatever a script sends.

The routes join ``api``'s blueprint, whose token check, JSON errors and CSRF exemption cover
them; importing this module adds them, before ``create_app`` registers the blueprint.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Response, jsonify, request
from werkzeug.exceptions import BadRequest, Forbidden, NotFound

from pullre.environments import actions
from pullre.models import PullRequest, User
from pullre.policies import sleep
from pullre.trust import approval
from pullre.web.api import blueprint, json_error, require_admin, token_user
from pullre.web.db_session import get_session
from pullre.web.request_clock import clock


def _pull(pull_id: int) -> PullRequest:
    found = get_session().get(PullRequest, pull_id)
    if found is None:
        raise NotFound(f"no pull request with id {pull_id}")
    return found


def _act(pull_id: int, action: Callable[[PullRequest, str], None]) -> tuple[Response, int]:
    """Record the action as the token's owner; the agent and the next pass carry it out."""
    session = get_session()
    target = _pull(pull_id)
    sleep.touch(session, target, clock())
    try:
        action(target, token_user().username)
    except actions.ActionRefused as exc:
        session.rollback()
        return json_error(str(exc), 409)
    session.commit()
    return jsonify(ok=True), 202


@blueprint.post("/pulls/<int:pull_id>/redeploy")
def redeploy(pull_id: int) -> tuple[Response, int]:
    session = get_session()
    return _act(
        pull_id, lambda pr, actor: actions.redeploy(session, pr, actor=actor, clock=clock())
    )


@blueprint.post("/pulls/<int:pull_id>/reset-data")
def reset_data(pull_id: int) -> tuple[Response, int]:
    session = get_session()
    return _act(
        pull_id, lambda pr, actor: actions.reset_data(session, pr, actor=actor, clock=clock())
    )


@blueprint.post("/pulls/<int:pull_id>/smoke")
def request_smoke(pull_id: int) -> tuple[Response, int]:
    """Deep smoke checks now; the results arrive in the PR's ``smoke`` once the agent ran them."""
    session = get_session()
    return _act(
        pull_id,
        lambda pr, actor: actions.request_smoke(session, pr, actor=actor, clock=clock()),
    )


@blueprint.post("/pulls/<int:pull_id>/release")
def release(pull_id: int) -> tuple[Response, int]:
    require_admin()
    session = get_session()
    return _act(pull_id, lambda pr, actor: actions.release(session, pr, actor=actor))


@blueprint.post("/pulls/<int:pull_id>/unpark")
def unpark(pull_id: int) -> tuple[Response, int]:
    require_admin()
    session = get_session()
    return _act(pull_id, lambda pr, actor: actions.unpark(session, pr, actor=actor))


@blueprint.post("/pulls/<int:pull_id>/wake")
def wake(pull_id: int) -> tuple[Response, int]:
    """Start a sleeping environment; it is ``ready`` once its agent has redeployed."""
    session = get_session()
    return _act(pull_id, lambda pr, actor: actions.wake(session, pr, actor=actor, clock=clock()))


@blueprint.post("/pulls/<int:pull_id>/sleep")
def put_to_sleep(pull_id: int) -> tuple[Response, int]:
    """Stop a ready or failed environment's server now; its server and data stay the PR's."""
    session = get_session()
    return _act(
        pull_id, lambda pr, actor: actions.put_to_sleep(session, pr, actor=actor, clock=clock())
    )


def _owner() -> User:
    """The token's owner as a row: pinning looks at who they are, not only their role."""
    owner = get_session().get(User, token_user().id)
    if owner is None:  # deleted between authentication and now
        raise Forbidden("this token's owner no longer exists")
    return owner


@blueprint.post("/pulls/<int:pull_id>/pin")
def pin(pull_id: int) -> tuple[Response, int]:
    """Admins and the PR's author; the JSON body says why: ``{"reason": "demo on Friday"}``."""
    target, owner = _pull(pull_id), _owner()
    if not actions.may_pin(owner, target):
        raise Forbidden(f"only an admin or the author of #{target.number} may pin it")
    body = request.get_json(silent=True)
    reason = body.get("reason") if isinstance(body, dict) else None
    if not isinstance(reason, str) or not reason.strip():
        raise BadRequest('send a JSON body {"reason": "why it must stay up"}')
    if len(reason) > actions.PIN_REASON_LENGTH:
        raise BadRequest(f"'reason' is longer than {actions.PIN_REASON_LENGTH} characters")
    session = get_session()
    return _act(
        pull_id,
        lambda pr, _actor: actions.pin(session, pr, user=owner, reason=reason, clock=clock()),
    )


@blueprint.post("/pulls/<int:pull_id>/unpin")
def unpin(pull_id: int) -> tuple[Response, int]:
    """Admins, the PR's author, and whoever pinned it."""
    target, owner = _pull(pull_id), _owner()
    if not actions.may_pin(owner, target) and owner.username != target.pinned_by:
        raise Forbidden(f"only an admin, the author or whoever pinned #{target.number} may unpin")
    session = get_session()
    return _act(pull_id, lambda pr, _actor: actions.unpin(session, pr, user=owner))


@blueprint.post("/pulls/<int:pull_id>/approve")
def approve(pull_id: int) -> tuple[Response, int]:
    """Let a waiting PR's head run: ``{"sha": "<its head sha>"}``; 409 once the head moved."""
    target, owner = _pull(pull_id), _owner()
    body = request.get_json(silent=True)
    sha = body.get("sha") if isinstance(body, dict) else None
    if not isinstance(sha, str) or not sha.strip():
        raise BadRequest('send a JSON body {"sha": "the head sha you approve"}')
    session = get_session()
    try:
        approval.approve(session, target, sha, user=owner, clock=clock())
    except approval.NotAllowed as exc:
        raise Forbidden(str(exc)) from None
    except approval.ApprovalRefused as exc:
        session.rollback()
        return json_error(str(exc), 409)
    session.commit()
    return jsonify(ok=True, approved_sha=target.approved_sha), 202
