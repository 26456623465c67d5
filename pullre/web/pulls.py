"""One pull request: where its environment stands, what happened to it, and what to do about it.

Actions only record intent through :mod:`pullre.actions` (the agent and the next pass carry
it out), so each is a POST that flashes what was asked and redirects back (post/redirect/get).
Releasing and un-parking change who gets the pool, so they are for admins, checked here on the
server whatever the page shows.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from pullre import actions
from pullre.clock import system_clock
from pullre.config import Settings
from pullre.github import web_url
from pullre.models import PullRequest
from pullre.nudge import Nudger
from pullre.smoke_results import latest_smoke
from pullre.status import pull_detail
from pullre.web.db_session import get_session
from pullre.web.webhook import NUDGER_KEY

blueprint = Blueprint("pulls", __name__, url_prefix="/pulls")

#: (session, pull, actor) → None, raising ActionRefused when it does not apply.
Action = Callable[[Session, PullRequest, str], None]


@blueprint.get("/<int:pull_request_id>")
def show(pull_request_id: int) -> str:
    session = get_session()
    detail = pull_detail(session, pull_request_id)
    if detail is None:
        abort(404)
    environment = detail.environment
    smoke = latest_smoke(session, [environment.id]).get(environment.id) if environment else None
    settings: Settings = current_app.extensions["pullre.settings"]
    repository = detail.pull.repository
    web = web_url(settings.github.api_url)
    return render_template(
        "pulls/show.html",
        detail=detail,
        pull=detail.pull,
        environment=environment,
        smoke=smoke,
        github_url=f"{web}/{repository.owner}/{repository.name}/pull/{detail.pull.number}",
        title=f"{repository.full_name}#{detail.pull.number}",
    )


def _act(pull_request_id: int, action: Action, done: str, *, admin_only: bool = False) -> Response:
    if admin_only and not current_user.is_admin:
        abort(403)
    session = get_session()
    pull = session.get(PullRequest, pull_request_id)
    if pull is None:
        abort(404)
    try:
        action(session, pull, current_user.username)
    except actions.ActionRefused as exc:
        session.rollback()
        flash(f"{exc}.", "error")
    else:
        session.commit()
        flash(done.format(number=pull.number), "success")
        _nudge(f"{pull.repository.full_name}#{pull.number}")
    return redirect(url_for(".show", pull_request_id=pull_request_id))


def _nudge(reason: str) -> None:
    """Start a pass now where webhooks can (releases and resets need one); else cron's next."""
    nudger: Nudger | None = current_app.extensions.get(NUDGER_KEY)
    if nudger is not None:
        nudger.nudge(reason)


@blueprint.post("/<int:pull_request_id>/redeploy")
def redeploy(pull_request_id: int) -> Response:
    return _act(
        pull_request_id,
        lambda s, p, actor: actions.redeploy(s, p, actor=actor, clock=system_clock),
        "Redeploy of #{number} asked: its agent deploys it again on its next pass.",
    )


@blueprint.post("/<int:pull_request_id>/reset-data")
def reset_data(pull_request_id: int) -> Response:
    return _act(
        pull_request_id,
        lambda s, p, actor: actions.reset_data(s, p, actor=actor, clock=system_clock),
        "Data reset of #{number} asked: its schema is cloned again, then the app redeployed.",
    )


@blueprint.post("/<int:pull_request_id>/release")
def release(pull_request_id: int) -> Response:
    return _act(
        pull_request_id,
        lambda s, p, actor: actions.release(s, p, actor=actor),
        "#{number} released: its server goes back to the pool and it stays out of the queue "
        "until queued again, pushed to or reopened.",
        admin_only=True,
    )


@blueprint.post("/<int:pull_request_id>/unpark")
def unpark(pull_request_id: int) -> Response:
    return _act(
        pull_request_id,
        lambda s, p, actor: actions.unpark(s, p, actor=actor),
        "#{number} queued again.",
        admin_only=True,
    )


@blueprint.post("/<int:pull_request_id>/smoke")
def request_smoke(pull_request_id: int) -> Response:
    return _act(
        pull_request_id,
        lambda s, p, actor: actions.request_smoke(s, p, actor=actor, clock=system_clock),
        "Deep smoke checks of #{number} asked: its agent runs them on its next pass, "
        "without redeploying.",
    )
