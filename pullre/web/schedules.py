"""Admin: office hours, attached to repositories (their environments sleep outside them) and to
servers outside the pool (started at opening, stopped at closing).

Every time is shown in the schedule's own zone with the zone's name beside it, so nobody has to
guess whether "09:00" meant the controller's clock, UTC or their own.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfoNotFoundError

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from pullre import events
from pullre.models import Repository, Schedule, Server
from pullre.policies import office_hours
from pullre.web import request_clock
from pullre.web.auth import require_admin
from pullre.web.db_session import commit_or_report_duplicate, get_session
from pullre.web.forms import ScheduleForm

blueprint = Blueprint("schedules", __name__, url_prefix="/schedules")
blueprint.before_request(require_admin)


@dataclass(frozen=True)
class ScheduleRow:
    schedule: Schedule
    description: str
    #: "open now" / "closed now", or why it cannot be said.
    state: str
    #: E.g. "closes Fri 2026-03-27 18:00 CET (Europe/Berlin)"; None when it never changes.
    next_change: str | None
    used_by: list[str]


def usage(session: Session) -> dict[int, list[str]]:
    """Schedule id → the repositories and servers that follow it, as the admin names them."""
    used: dict[int, list[str]] = defaultdict(list)
    for repository in session.scalars(
        select(Repository)
        .where(Repository.schedule_id.is_not(None))
        .order_by(Repository.owner, Repository.name)
    ):
        assert repository.schedule_id is not None
        used[repository.schedule_id].append(f"repository {repository.full_name}")
    for server in session.scalars(
        select(Server).where(Server.schedule_id.is_not(None)).order_by(Server.name)
    ):
        assert server.schedule_id is not None
        used[server.schedule_id].append(f"server {server.name or server.instance_id}")
    return used


def _row(schedule: Schedule, used_by: list[str], now: datetime) -> ScheduleRow:
    description = office_hours.describe(schedule)
    try:
        is_open = office_hours.is_open(schedule, now)
        change = office_hours.next_change(schedule, now)
    except (ZoneInfoNotFoundError, ValueError):
        return ScheduleRow(schedule, description, "unknown time zone", None, used_by)
    next_change = None
    if change is not None:
        verb = "closes" if is_open else "opens"
        next_change = f"{verb} {office_hours.format_in_zone(schedule, change)}"
    return ScheduleRow(
        schedule, description, "open now" if is_open else "closed now", next_change, used_by
    )


@blueprint.get("/")
def index() -> str:
    session = get_session()
    used = usage(session)
    now = request_clock.now()
    rows = [
        _row(schedule, used.get(schedule.id, []), now)
        for schedule in session.scalars(select(Schedule).order_by(Schedule.name))
    ]
    return render_template("schedules/index.html", rows=rows)


def _get(schedule_id: int) -> Schedule:
    schedule = get_session().get(Schedule, schedule_id)
    if schedule is None:
        abort(404)
    return schedule


def _save(form: ScheduleForm, schedule: Schedule) -> bool:
    session = get_session()
    name = form.name.data
    clash = session.scalar(
        select(Schedule.id).where(Schedule.name == name, Schedule.id != schedule.id)
    )
    if clash is not None:
        form.name.errors.append(f"A schedule named {name} exists already.")
        return False
    schedule.name = name
    schedule.time_zone = form.time_zone.data
    schedule.days = sorted(set(form.days.data))
    schedule.opens_at = form.opens_at.data
    schedule.closes_at = form.closes_at.data
    session.add(schedule)
    session.flush()
    events.record(
        session,
        "schedule.saved",
        f"Office hours {name} saved: {office_hours.describe(schedule)}",
        schedule=name,
    )
    return commit_or_report_duplicate(form.name.errors, f"A schedule named {name} exists already.")


def _form_page(form: ScheduleForm, title: str) -> str:
    return render_template(
        "schedules/form.html", form=form, title=title, zones=office_hours.known_time_zones()
    )


@blueprint.route("/new", methods=["GET", "POST"])
def create() -> Response | str:
    form = ScheduleForm()
    if form.validate_on_submit() and _save(form, Schedule()):
        flash(f"Office hours {form.name.data} added.", "success")
        return redirect(url_for(".index"))
    return _form_page(form, "Add office hours")


@blueprint.route("/<int:schedule_id>/edit", methods=["GET", "POST"])
def edit(schedule_id: int) -> Response | str:
    schedule = _get(schedule_id)
    form = ScheduleForm(obj=schedule)
    if form.validate_on_submit() and _save(form, schedule):
        flash(f"Office hours {schedule.name} saved.", "success")
        return redirect(url_for(".index"))
    return _form_page(form, f"Edit office hours {schedule.name}")


@blueprint.post("/<int:schedule_id>/delete")
def delete(schedule_id: int) -> Response:
    """Repositories and servers that followed it are left without office hours (always on)."""
    session = get_session()
    schedule = _get(schedule_id)
    used_by = usage(session).get(schedule.id, [])
    events.record(
        session,
        "schedule.removed",
        f"Office hours {schedule.name} removed",
        schedule=schedule.name,
        used_by=used_by,
    )
    session.delete(schedule)  # the foreign keys are ON DELETE SET NULL
    session.commit()
    message = f"Office hours {schedule.name} removed."
    if used_by:
        message += f" No office hours any more for: {', '.join(used_by)}."
    flash(message, "success")
    return redirect(url_for(".index"))
