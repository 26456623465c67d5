"""One pull request: where its environment stands, what happened to it, and what to do about it.

Actions only record intent through :mod:`pullre.environments.actions` (the agent and the next
pass carry it out), so each is a POST that flashes what was asked and redirects back
(post/redirect/get).
Releasing and un-parking change who gets the pool, so they are for admins; pinning keeps a
server from everyone else, so it is for admins and the PR's author. Both are checked here on
the server whatever the page shows. Sleeping and waking only trade money for a wait, so anyone
logged in may do either.

Opening the page, or any action on it, is activity: it resets the idle-sleep and expiry clocks
of the PR's environment (the only write a GET makes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from pullre.config import Settings
from pullre.cost.pricing import hours, money
from pullre.environments import action_rules, actions
from pullre.environments.error_text import plain_error
from pullre.environments.smoke_results import latest_smoke
from pullre.environments.status import pull_detail
from pullre.environments.visit_status import announcement, changing, visit_status
from pullre.github.port import web_url
from pullre.models import ACTIVE_ENVIRONMENT_STATUSES as ACTIVE
from pullre.models import PullRequest, User
from pullre.policies import sleep
from pullre.policies.facts import policy_view
from pullre.policies.savings import PoolPolicies
from pullre.reconcile.nudge import Nudger
from pullre.trust import approval
from pullre.web import activity, pull_visit
from pullre.web.db_session import get_session
from pullre.web.request_clock import clock
from pullre.web.webhook import NUDGER_KEY

blueprint = Blueprint("pulls", __name__, url_prefix="/pulls")

#: (session, pull, actor) → None, raising ActionRefused when it does not apply.
Action = Callable[[Session, PullRequest, str], None]


def _settings() -> Settings:
    settings: Settings = current_app.extensions["pullre.settings"]
    return settings


def _pull(session: Session, pull_request_id: int) -> PullRequest:
    pull = session.get(PullRequest, pull_request_id)
    if pull is None:
        abort(404)
    return pull


def _me(session: Session) -> User:
    """The logged-in person as a row, for the rules (pinning) that look at who they are."""
    user = session.get(User, current_user.id)
    if user is None:
        abort(403)
    return user


@blueprint.get("/<int:pull_request_id>")
def show(pull_request_id: int) -> str:
    activity.touch(pull_request_id)
    context = page_context(get_session(), pull_request_id)
    return render_template("pulls/show.html", **context)


def page_context(session: Session, pull_request_id: int) -> dict[str, Any]:
    """What the page and its live parts (:mod:`pullre.web.pull_live`) are drawn from; 404s."""
    detail = pull_detail(session, pull_request_id)
    if detail is None:
        abort(404)
    environment = detail.environment
    smoke = latest_smoke(session, [environment.id]).get(environment.id) if environment else None
    settings = _settings()
    pull = detail.pull
    repository = pull.repository
    web = web_url(settings.github.api_url)
    me = _me(session)
    visit = visit_status(session, pull, environment, clock()())
    return {
        "detail": detail,
        "pull": pull,
        "environment": environment,
        "smoke": smoke,
        "policy": policy_view(
            session,
            pull,
            environment,
            ttl=PoolPolicies.from_settings(settings.pool).ttl,
            currency=settings.cost.currency,
            now=clock()(),
        ),
        "visit": visit,
        "in_flight": changing(visit, environment),
        "announce": announcement(visit, environment),
        "plain_error": plain_error,
        "refused": action_rules.refusals(
            pull, environment if environment and environment.status in ACTIVE else None
        ),
        "may_pin": actions.may_pin(me, pull),
        "may_unpin": actions.may_pin(me, pull) or me.username == pull.pinned_by,
        "pin_reason_length": actions.PIN_REASON_LENGTH,
        "awaiting_approval": approval.awaiting_approval(pull, repository),
        "may_approve": approval.may_approve(me, repository),
        "who_can_approve": approval.who_can_approve(repository),
        "money": money,
        "hours": hours,
        "github_url": f"{web}/{repository.owner}/{repository.name}/pull/{pull.number}",
        "title": f"{repository.full_name}#{pull.number}",
    }


def _act(
    pull_request_id: int,
    action: Action,
    done: str,
    *,
    allowed: Callable[[Session, PullRequest], bool] | None = None,
    then: str | None = None,
) -> Response:
    """Run the action as the logged-in user; 403 unless ``allowed`` (checked on the server).

    ``then`` is where to go afterwards (the PR page unless said otherwise).
    """
    session = get_session()
    pull = _pull(session, pull_request_id)
    if allowed is not None and not allowed(session, pull):
        abort(403)
    sleep.touch(session, pull, clock())
    try:
        action(session, pull, current_user.username)
    except actions.ActionRefused as exc:
        session.rollback()
        if then is None:  # a visitor who lost a race to wake it is simply sent on
            flash(f"{exc}.", "error")
    else:
        session.commit()
        flash(done.format(number=pull.number), "success")
        _nudge(f"{pull.repository.full_name}#{pull.number}")
    return redirect(then or url_for(".show", pull_request_id=pull_request_id))


def _nudge(reason: str) -> None:
    """Start a pass now where webhooks can (releases and resets need one); else cron's next."""
    nudger: Nudger | None = current_app.extensions.get(NUDGER_KEY)
    if nudger is not None:
        nudger.nudge(reason)


def _admin(_session: Session, _pull: PullRequest) -> bool:
    return bool(current_user.is_admin)


@blueprint.post("/<int:pull_request_id>/redeploy")
def redeploy(pull_request_id: int) -> Response:
    return _act(
        pull_request_id,
        lambda s, p, actor: actions.redeploy(s, p, actor=actor, clock=clock()),
        "Redeploy of #{number} asked: its agent deploys it again on its next pass.",
    )


@blueprint.post("/<int:pull_request_id>/reset-data")
def reset_data(pull_request_id: int) -> Response:
    return _act(
        pull_request_id,
        lambda s, p, actor: actions.reset_data(s, p, actor=actor, clock=clock()),
        "Data reset of #{number} asked: its schema is cloned again, then the app redeployed.",
    )


@blueprint.post("/<int:pull_request_id>/release")
def release(pull_request_id: int) -> Response:
    return _act(
        pull_request_id,
        lambda s, p, actor: actions.release(s, p, actor=actor),
        "#{number} released: its server goes back to the pool and it stays out of the queue "
        "until queued again, pushed to or reopened.",
        allowed=_admin,
    )


@blueprint.post("/<int:pull_request_id>/unpark")
def unpark(pull_request_id: int) -> Response:
    return _act(
        pull_request_id,
        lambda s, p, actor: actions.unpark(s, p, actor=actor),
        "#{number} queued again.",
        allowed=_admin,
    )


@blueprint.post("/<int:pull_request_id>/smoke")
def request_smoke(pull_request_id: int) -> Response:
    return _act(
        pull_request_id,
        lambda s, p, actor: actions.request_smoke(s, p, actor=actor, clock=clock()),
        "Deep smoke checks of #{number} asked: its agent runs them on its next pass, "
        "without redeploying.",
    )


@blueprint.post("/<int:pull_request_id>/wake")
def wake(pull_request_id: int) -> Response:
    """From the PR page, or from the visit page (``next=visit``), which then waits for it."""
    from_visit = request.form.get("next") == "visit"
    return _act(
        pull_request_id,
        lambda s, p, actor: actions.wake(s, p, actor=actor, clock=clock()),
        "Waking #{number}: its server starts on the next pass and its agent redeploys it; "
        "it is ready in a few minutes, with its data as it was.",
        then=pull_visit.waiting_url(pull_request_id) if from_visit else None,
    )


@blueprint.post("/<int:pull_request_id>/sleep")
def put_to_sleep(pull_request_id: int) -> Response:
    return _act(
        pull_request_id,
        lambda s, p, actor: actions.put_to_sleep(s, p, actor=actor, clock=clock()),
        "#{number} goes to sleep: its server stops on the next pass and keeps its data; "
        "wake it when it is needed again.",
    )


@blueprint.post("/<int:pull_request_id>/pin")
def pin(pull_request_id: int) -> Response:
    reason = request.form.get("reason", "")
    return _act(
        pull_request_id,
        lambda s, p, _actor: actions.pin(s, p, user=_me(s), reason=reason, clock=clock()),
        "#{number} pinned: it neither sleeps nor expires until unpinned.",
        allowed=lambda s, p: actions.may_pin(_me(s), p),
    )


@blueprint.post("/<int:pull_request_id>/unpin")
def unpin(pull_request_id: int) -> Response:
    return _act(
        pull_request_id,
        lambda s, p, _actor: actions.unpin(s, p, user=_me(s)),
        "#{number} unpinned: idle sleep and expiry apply to it again.",
        allowed=lambda s, p: actions.may_pin(_me(s), p) or _me(s).username == p.pinned_by,
    )


@blueprint.post("/<int:pull_request_id>/approve")
def approve(pull_request_id: int) -> Response:
    """Approve the head sha the page showed (the form carries it): a newer head is refused."""
    session = get_session()
    pull = _pull(session, pull_request_id)
    me = _me(session)
    if not approval.may_approve(me, pull.repository):
        abort(403)
    sha = request.form.get("sha", "")
    try:
        approval.approve(session, pull, sha, user=me, clock=clock())
    except approval.ApprovalRefused as exc:
        session.rollback()
        flash(f"{exc}.", "error")
    else:
        session.commit()
        flash(f"{sha[:12]} of #{pull.number} approved: it is queued for a server.", "success")
        _nudge(f"{pull.repository.full_name}#{pull.number}")
    return redirect(url_for(".show", pull_request_id=pull_request_id))


blueprint.add_url_rule("/<int:pull_request_id>/visit", "visit", pull_visit.visit, methods=["GET"])
