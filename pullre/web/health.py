"""``/healthz`` for load balancers and monitors: public, JSON, and honest about the database."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from pullre.web.db_session import get_session

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> tuple[Response, int]:
    try:
        get_session().execute(text("SELECT 1"))
    except SQLAlchemyError:
        return jsonify(status="error", database="unreachable"), 503
    return jsonify(status="ok", database="ok"), 200
