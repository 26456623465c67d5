"""The first page: every open PR and where its environment stands."""

from __future__ import annotations

from flask import Blueprint, render_template
from sqlalchemy import func, select

from pullre.models import Repository, Server
from pullre.status import pull_request_views
from pullre.web.db_session import get_session

blueprint = Blueprint("dashboard", __name__)


@blueprint.get("/")
def index() -> str:
    session = get_session()
    return render_template(
        "dashboard.html",
        pulls=pull_request_views(session),
        repository_count=session.scalar(select(func.count()).select_from(Repository)) or 0,
        server_count=session.scalar(
            select(func.count()).select_from(Server).where(Server.in_pool.is_(True))
        )
        or 0,
    )
