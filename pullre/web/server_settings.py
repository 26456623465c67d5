"""Admin: what a server costs per hour, and servers kept outside the pool on office hours.

Beside the pool page (same ``/servers`` prefix) but apart from it: the pool is about handing
servers to PRs, this is about a server's price and, for machines outside the pool (always-on
test boxes), the hours the reconcile pass starts and stops them by.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from pullre.models import Schedule, Server
from pullre.servers import registry as servers
from pullre.servers import settings as server_settings
from pullre.servers.address import set_address
from pullre.web.auth import require_admin
from pullre.web.db_session import get_session
from pullre.web.forms import (
    OutsideServerForm,
    PoolServerSettingsForm,
    ServerSettingsForm,
    schedule_choices,
)
from pullre.web.servers import get_server, settings

blueprint = Blueprint("server_settings", __name__, url_prefix="/servers")
blueprint.before_request(require_admin)


def _with_schedules(form: ServerSettingsForm) -> ServerSettingsForm:
    schedules = get_session().scalars(select(Schedule).order_by(Schedule.name)).all()
    form.schedule_id.choices = schedule_choices(list(schedules), "None")
    return form


def _schedule(form: ServerSettingsForm) -> Schedule | None:
    chosen: int | None = form.schedule_id.data
    return None if chosen is None else get_session().get(Schedule, chosen)


def _settings_page(form: ServerSettingsForm, title: str, server: Server | None) -> str:
    cost = settings().cost
    price_now = None
    if server is not None:
        applied = server_settings.applied_price(server, cost.instance_prices)
        price_now = applied.describe(cost.currency, server.instance_type)
    return render_template(
        "servers/settings.html",
        form=form,
        title=title,
        server=server,
        price_now=price_now,
        currency=cost.currency,
        prices=cost.instance_prices,
    )


@blueprint.route("/<int:server_id>/edit", methods=["GET", "POST"])
def edit(server_id: int) -> Response | str:
    """Name and price of any known server; staging URL and app port of a pool server (also
    while a PR holds it); office hours only for one outside the pool."""
    session = get_session()
    server = get_server(server_id, in_pool=False)
    kind = PoolServerSettingsForm if server.in_pool else ServerSettingsForm
    form = _with_schedules(kind(obj=server))
    if server.in_pool:
        form.schedule_id.render_kw = {"disabled": True}
    if request.method == "GET" and server.hourly_price is not None:
        form.hourly_price.data = server_settings.format_price(server.hourly_price)
    changes: list[str] = []
    if form.validate_on_submit():
        try:
            if isinstance(form, PoolServerSettingsForm):
                changes = set_address(
                    session, server, staging_url=form.staging_url.data, app_port=form.app_port.data
                )
            server_settings.set_price_and_schedule(
                session,
                server,
                hourly_price=form.hourly_price.data,
                # A disabled select sends nothing: a pool server never keeps a schedule.
                schedule=None if server.in_pool else _schedule(form),
                name=form.name.data or "",
            )
        except servers.ServerError as exc:
            session.rollback()
            form.schedule_id.errors.append(str(exc))
        else:
            session.commit()
            applies = f" {'; '.join(changes)}: applies at its next assignment." if changes else ""
            flash(f"{server_settings.label(server)} saved.{applies}", "success")
            return redirect(url_for("servers.index"))
    return _settings_page(form, f"Edit {server_settings.label(server)}", server)


@blueprint.route("/outside/new", methods=["GET", "POST"])
def add_outside() -> Response | str:
    session = get_session()
    form = _with_schedules(OutsideServerForm())
    if form.validate_on_submit():
        try:
            server = server_settings.add_outside_server(
                session,
                form.instance_id.data,
                name=form.name.data or "",
                hourly_price=form.hourly_price.data,
                schedule=_schedule(form),
            )
        except servers.ServerError as exc:
            session.rollback()
            form.instance_id.errors.append(str(exc))
        else:
            session.commit()
            flash(f"{server_settings.label(server)} added outside the pool.", "success")
            return redirect(url_for("servers.index", _anchor="outside"))
    return _settings_page(form, "Add a server outside the pool", None)
