"""The first page: every open PR's environment first (with its pin, acceptance and a deploy's
progress), then the pool at a glance, its use this week, what it cost per repository these
months, and the PRs pinned awake.

The page refreshes its table in place: ``static/app.js`` asks for the same URL (filters and page
included) with ``X-Requested-With: fetch`` and gets only the live fragment back, so a refresh
never re-draws the charts or costs their queries. What the page shows is the same for everyone,
so it is read once per change of the DB (:mod:`pullre.web.page_cache`), however many tabs ask.
"""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, current_app, make_response, render_template, request
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from pullre.config import Settings
from pullre.cost.chart import MONTHS, cost_chart
from pullre.cost.pricing import monthly_by_repository
from pullre.models import Repository, Server
from pullre.overview.dashboard import (
    STATUS_CHOICES,
    DashboardFilter,
    dashboard_page,
    pinned_pulls,
    pool_summary,
    repository_choices,
)
from pullre.overview.pool_usage import hourly_usage, usage_chart
from pullre.overview.row_details import row_details, summary
from pullre.servers.registry import age
from pullre.web.bounded_numbers import lenient_query_int
from pullre.web.db_session import get_session
from pullre.web.page_cache import page_cache
from pullre.web.request_clock import now as clock_now

blueprint = Blueprint("dashboard", __name__)

#: The header app.js sends for the table fragment; answered with ``FRAGMENT_HEADER`` set.
FETCH_HEADER = "X-Requested-With"
FRAGMENT_HEADER = "X-Pullre-Fragment"
REFRESH_SECONDS = 10


def _filter() -> DashboardFilter:
    """The query string's filter; unknown values are ignored rather than answered with a 400."""
    status = request.args.get("status", "")
    return DashboardFilter(
        repository_id=lenient_query_int("repository"),
        status=status if status in STATUS_CHOICES else None,
        page=lenient_query_int("page", 1) or 1,
    )


@blueprint.get("/")
def index() -> Response:
    settings: Settings = current_app.extensions["pullre.settings"]
    where = _filter()
    now = clock_now()
    cache = page_cache()
    live = cache.get(("dashboard", where), lambda: _live(settings, where))
    shown = {**live, "where": where, "now": now, "age": age}
    if request.headers.get(FETCH_HEADER) == "fetch":
        response = make_response(render_template("dashboard_live.html", **shown))
        response.headers[FRAGMENT_HEADER] = "environments"
    else:
        overview = {
            **cache.get("dashboard choices and pins", _choices_and_pins),
            **cache.summary("dashboard charts", lambda: _charts(settings, now)),
        }
        response = make_response(
            render_template(
                "dashboard.html",
                **shown,
                **overview,
                statuses=STATUS_CHOICES,
                refresh_seconds=REFRESH_SECONDS,
            )
        )
    # The same URL answers with a page or a fragment: caches must keep them apart.
    response.vary.add(FETCH_HEADER)
    response.headers["Cache-Control"] = "no-store"
    return response


def _live(settings: Settings, where: DashboardFilter) -> dict[str, object]:
    """What the page and its refreshed fragment show: the same for everyone and whenever (times
    are drawn as of the request), so cached until the next commit."""
    session = get_session()
    result = dashboard_page(session, where, github_api_url=settings.github.api_url)
    filtered = where.repository_id is not None or where.status is not None
    return {
        "result": result,
        "pool": pool_summary(session),
        "filtered": filtered,
        "details": row_details(session, [row.pull_id for row in result.rows]),
        "summary": summary([row.status for row in result.rows]),
        **(_setup_counts() if not result.total and not filtered else {}),
    }


def _choices_and_pins() -> dict[str, object]:
    """The filters' choices and the pinned PRs: what only the full page shows, exactly."""
    session = get_session()
    return {"repositories": repository_choices(session), "pinned": pinned_pulls(session)}


def _charts(settings: Settings, now: datetime) -> dict[str, object]:
    """The week's use and the months' cost: summaries, a minute old at most."""
    session = get_session()
    return {
        "chart": usage_chart(hourly_usage(session, now), now),
        "costs": cost_chart(
            monthly_by_repository(session, months=MONTHS, now=now), now, settings.cost.currency
        ),
    }


def _setup_counts() -> dict[str, int]:
    """What the empty page counts to say which set-up step comes next."""
    session = get_session()
    return {
        "repository_count": session.scalar(select(func.count()).select_from(Repository)) or 0,
        "server_count": session.scalar(
            select(func.count()).select_from(Server).where(Server.in_pool.is_(True))
        )
        or 0,
    }
