"""``/pulls/<id>/visit``: the link the PR comment gives, which sends a reviewer to the app.

It is activity (idle sleep and expiry start over) and otherwise never changes anything on a
GET: an environment whose app serves (ready, or up with failing smoke checks) redirects to its
staging URL; a sleeping one offers a Wake button (a POST with the CSRF token); any other says
what is happening (queued #3, deploying step 4 of 7 for 40 s, failed and why) and, while that
moves towards ready by itself, refreshes itself (an HTTP ``Refresh`` header, so no script is
needed) until it can send the visitor on. :mod:`pullre.environments.visit_status` decides.
"""

from __future__ import annotations

from flask import abort, make_response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from pullre.environments.active import active_environment
from pullre.environments.visit_status import visit_status
from pullre.models import EnvironmentStatus, PullRequest
from pullre.web import activity
from pullre.web.db_session import get_session
from pullre.web.request_clock import now

REFRESH_SECONDS = 5
#: Statuses a woken environment passes through on its way to ready.
WAKING = frozenset({EnvironmentStatus.PROVISIONING, EnvironmentStatus.DEPLOYING})


def waiting_url(pull_request_id: int) -> str:
    """The visit page of a PR someone just woke: it waits for ready instead of giving up."""
    return url_for("pulls.visit", pull_request_id=pull_request_id, wait=1)


def visit(pull_request_id: int) -> Response:
    activity.touch(pull_request_id)
    session = get_session()
    pull = session.get(PullRequest, pull_request_id)
    if pull is None:
        abort(404)
    # The current stay, else the last one: a released stay still says why it ended.
    environment = active_environment(session, pull) or (
        pull.environments[-1] if pull.environments else None
    )
    status = visit_status(session, pull, environment, now())
    if status.app_url:
        return redirect(status.app_url, code=303)
    sleeping = environment is not None and environment.status is EnvironmentStatus.SLEEPING
    response = make_response(
        render_template(
            "pulls/visit.html",
            pull=pull,
            environment=environment,
            status=status,
            sleeping=sleeping,
            waking=request.args.get("wait") == "1"
            and environment is not None
            and environment.status in WAKING,
            refresh_seconds=REFRESH_SECONDS,
            title=f"Visit {pull.repository.full_name}#{pull.number}",
        )
    )
    if status.in_flight:
        response.headers["Refresh"] = str(REFRESH_SECONDS)
    response.headers["Cache-Control"] = "no-store"
    return response
