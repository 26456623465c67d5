"""``/metrics`` for Prometheus, behind a bearer token of its own.

A scraper has no login session, so the endpoint is in ``auth.PUBLIC_ENDPOINTS`` (like the
webhook) and checks ``[controller] metrics_token`` itself. A blank setting refuses everything
(403) rather than publishing pool and PR figures to anyone who asks.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, request

from pullre.config import Settings
from pullre.overview import metrics
from pullre.web.db_session import get_session

blueprint = Blueprint("metrics", __name__)


def _refusal(status: int, message: str) -> Response:
    response = Response(message + "\n", status=status, mimetype="text/plain")
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="pullre metrics"'
    return response


@blueprint.get("/metrics")
def scrape() -> Response:
    settings: Settings = current_app.extensions["pullre.settings"]
    expected = settings.controller.metrics_token
    if not expected:
        return _refusal(403, "metrics are not configured")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # Bytes, not str: compare_digest refuses non-ASCII str, and a header may carry anything.
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), expected.encode()
    ):
        return _refusal(401, "a valid metrics bearer token is required")
    exposition = metrics.exposition(get_session(), currency=settings.cost.currency)
    response = Response(exposition, status=200)
    response.headers["Content-Type"] = metrics.CONTENT_TYPE
    response.headers["Cache-Control"] = "no-store"
    return response
