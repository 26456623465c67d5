"""``/pulls/<id>/visit``: the link the PR comment gives, which sends a reviewer to the app.

It is activity (idle sleep and expiry start over) and otherwise never changes anything on a
GET: a ready environment redirects to its staging URL; a sleeping one offers a Wake button (a
POST with the CSRF token); after waking, this page refreshes itself (an HTTP ``Refresh``
header, so no script is needed) until the environment is ready and then sends the visitor on.
Anything else goes to the PR page, which says why there is nothing to visit.
"""

from __future__ import annotations

from flask import abort, flash, make_response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from pullre.environments.active import active_environment
from pullre.models import Environment, EnvironmentStatus, PullRequest
from pullre.web import activity
from pullre.web.db_session import get_session

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
    environment = active_environment(session, pull)
    server = environment.server if environment is not None else None
    url = server.staging_url if server is not None else ""
    status = environment.status if environment is not None else None
    if status is EnvironmentStatus.READY and url:
        return redirect(url, code=303)
    waiting = request.args.get("wait") == "1"
    if status is EnvironmentStatus.SLEEPING or (waiting and status in WAKING):
        response = make_response(
            render_template(
                "pulls/visit.html",
                pull=pull,
                environment=environment,
                waking=status in WAKING,
                refresh_seconds=REFRESH_SECONDS,
                title=f"Visit {pull.repository.full_name}#{pull.number}",
            )
        )
        if status in WAKING:
            response.headers["Refresh"] = str(REFRESH_SECONDS)
        response.headers["Cache-Control"] = "no-store"
        return response
    flash(_why_not(pull, environment), "info")
    return redirect(url_for("pulls.show", pull_request_id=pull_request_id))


def _why_not(pull: PullRequest, environment: Environment | None) -> str:
    number = f"#{pull.number}"
    if environment is None:
        return f"{number} has no staging environment now, so there is nothing to visit."
    status = environment.status
    if status is EnvironmentStatus.QUEUED:
        return f"{number} waits in the queue for a server; visit it once it is ready."
    if status in WAKING:
        return f"{number} is being deployed ({status.value}); visit it again once it is ready."
    if status is EnvironmentStatus.FAILED:
        return f"The last deploy of {number} failed; see why below."
    if status is EnvironmentStatus.READY:
        return f"{number} is ready but its server has no staging URL; ask an admin to set one."
    return f"{number} is {status.value}; there is nothing to visit."
