"""``/pulls/<id>/live.json``: the PR page's moving parts, for the page to update itself.

A PR page left open during a deploy, a redeploy or a deep smoke run must not go stale, so
``static/app.js`` polls this every few seconds while the answer says something is in flight,
and replaces the parts whose HTML changed (status, environment, actions, smoke results, the
latest deploy's steps and the timeline). The parts are drawn by the very templates the page
includes, so a live page and a reloaded page never differ. It is read-only: unlike opening
the page it is no activity (a tab left open does not keep an environment awake), and it is
behind the login like every page.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template
from werkzeug.wrappers import Response

from pullre.web.db_session import get_session
from pullre.web.pulls import page_context

blueprint = Blueprint("pull_live", __name__, url_prefix="/pulls")

#: Element id → the template that draws it (each rooted at that id, marked data-live-part).
PARTS = {
    "pull-status": "pulls/parts/status.html",
    "pull-environment": "pulls/parts/environment.html",
    "pull-actions": "pulls/parts/actions.html",
    "smoke": "pulls/parts/smoke.html",
    "pull-deploy": "pulls/parts/deploy.html",
    "pull-timeline": "pulls/parts/timeline.html",
}
#: How often the page asks while something is in flight (seconds).
POLL_SECONDS = 2


@blueprint.get("/<int:pull_request_id>/live.json")
def live(pull_request_id: int) -> Response:
    context = page_context(get_session(), pull_request_id)
    response = jsonify(
        in_flight=context["in_flight"],
        status=context["visit"].label,
        message=context["visit"].message,
        announce=context["announce"],
        poll_seconds=POLL_SECONDS,
        parts={element: render_template(name, **context) for element, name in PARTS.items()},
    )
    response.headers["Cache-Control"] = "no-store"
    return response
