"""Acceptance scenarios in the UI: the scenario library, where they are written and kept.

Members and admins alike write scenarios (business owners are members). A scenario written in
the UI is edited or deleted by its owner or an admin (checked here, not just hidden); one read
from a PR's branch changes in that branch. Runs copy the steps, so an edit never rewrites what
was signed off, and a scenario that was run cannot be deleted (see ``authoring.delete``).

Every form is a POST with the session's CSRF token, and answers with a redirect
(post/redirect/get). A PR's scenarios and their runs are ``pull_scenarios``, whose routes join
this module's blueprint (so every page keeps its ``scenarios.*`` endpoint).
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from pullre import events
from pullre.models import PullRequest, Scenario, ScenarioRun
from pullre.scenarios import acceptance as scenarios
from pullre.scenarios import authoring, gate
from pullre.scenarios.markdown import ParsedScenario, ScenarioFormatError, parse, parse_labels
from pullre.web import request_clock
from pullre.web.db_session import get_session

blueprint = Blueprint("scenarios", __name__)
STEPS_HELP = (
    "Numbered steps, each followed by its expected result on the next line: "
    "1. Open the cart / Expected: It is empty"
)


class ScenarioForm(FlaskForm):  # type: ignore[misc]
    title = StringField("Title", validators=[DataRequired(), Length(max=200)])
    labels = StringField("Labels", description="PR labels that attach it, comma-separated")
    steps = TextAreaField("Steps", validators=[DataRequired()], description=STEPS_HELP)


@blueprint.get("/scenarios")
def index() -> str:
    """Each scenario with the open PRs it gates now and its latest run's outcome."""
    session = get_session()
    rows = list(
        session.scalars(
            select(Scenario).where(Scenario.pull_request_id.is_(None)).order_by(Scenario.title)
        )
    )
    latest: dict[int, ScenarioRun] = {}
    for run in session.scalars(
        select(ScenarioRun)
        .where(ScenarioRun.scenario_id.in_([s.id for s in rows]))
        .order_by(ScenarioRun.started_at, ScenarioRun.id)
    ):
        latest[run.scenario_id] = run  # the newest one wins
    return render_template(
        "scenarios/index.html",
        scenarios=rows,
        gated={s.id: authoring.gated_pulls(session, s) for s in rows},
        latest={i: (run, scenarios.outcome(run)) for i, run in latest.items()},
        title="Scenarios",
    )


def _parsed(form: ScenarioForm) -> ParsedScenario | None:
    """The form's scenario, or None with the problem added to the form's errors."""
    if not form.validate_on_submit():
        return None
    try:
        parsed = parse(f"# {form.title.data}\n{form.steps.data}", "steps")
        authoring.validate(parsed.title, list(parsed.steps))
    except ScenarioFormatError as exc:
        form.steps.errors.append(str(exc).replace("steps:", "line ", 1))
        return None
    return ParsedScenario(parsed.title, parsed.steps, parse_labels(form.labels.data or ""))


@blueprint.route("/scenarios/new", methods=["GET", "POST"])
def new() -> Response | str:
    form = ScenarioForm()
    parsed = _parsed(form)
    if parsed is not None:
        session = get_session()
        session.add(
            Scenario(
                title=parsed.title,
                steps=[step.as_dict() for step in parsed.steps],
                labels=list(parsed.labels),
                owner_id=current_user.id,
            )
        )
        session.commit()
        flash(f"Scenario “{parsed.title}” saved.", "success")
        return redirect(url_for(".index"))
    return render_template("form.html", form=form, title="New scenario")


def _scenario(scenario_id: int) -> Scenario:
    scenario = get_session().get(Scenario, scenario_id)
    if scenario is None:
        abort(404)
    return scenario


def _changeable(scenario_id: int) -> Scenario:
    """The scenario if the current user may edit or delete it, else 403 whatever a page showed."""
    scenario = _scenario(scenario_id)
    if not authoring.may_change(scenario, current_user.id, current_user.is_admin):
        abort(403)
    return scenario


@blueprint.get("/scenarios/<int:scenario_id>")
def show(scenario_id: int) -> str:
    scenario, session = _scenario(scenario_id), get_session()
    pull = session.get(PullRequest, scenario.pull_request_id or 0)
    gated = authoring.gated_pulls(session, scenario)
    return render_template(
        "scenarios/show.html", scenario=scenario, pull=pull, gated=gated,
        runs=authoring.run_count(session, scenario),
        may_change=authoring.may_change(scenario, current_user.id, current_user.is_admin),
        title=scenario.title,
    )  # fmt: skip


@blueprint.route("/scenarios/<int:scenario_id>/edit", methods=["GET", "POST"])
def edit(scenario_id: int) -> Response | str:
    scenario = _changeable(scenario_id)
    form = ScenarioForm(
        data={
            "title": scenario.title,
            "labels": ", ".join(scenario.labels or ()),
            "steps": authoring.steps_text(scenario.steps),
        }
    )
    parsed = _parsed(form)
    if parsed is not None:
        session = get_session()
        before = {"title": scenario.title, "labels": list(scenario.labels or ())}
        lost = gate.lost_by_labels(session, scenario, parsed.labels)
        if any(scenarios.is_author(pull, current_user.username) for pull in lost):
            abort(403)  # the PR's author never lifts its gate, even as the scenario's owner
        gate.lifted(session, lost, scenario, current_user.username, how="label removed")
        scenario.title = parsed.title
        scenario.steps = [step.as_dict() for step in parsed.steps]  # a new list: JSON column
        scenario.labels = list(parsed.labels)
        scenario.updated_at = request_clock.now()
        events.record(
            session, "scenario.edited",
            f"scenario “{parsed.title}” edited by {current_user.username}",
            scenario_id=scenario.id, actor=current_user.username, before=before,
            labels=list(parsed.labels), steps=len(parsed.steps),
        )  # fmt: skip
        session.commit()
        flash(f"Scenario “{parsed.title}” saved.", "success")
        return redirect(url_for(".show", scenario_id=scenario.id))
    return render_template(
        "scenarios/edit.html", form=form, scenario=scenario, title=f"Edit “{scenario.title}”"
    )


@blueprint.post("/scenarios/<int:scenario_id>/delete")
def delete(scenario_id: int) -> Response:
    scenario, session = _changeable(scenario_id), get_session()
    title, gated = scenario.title, authoring.gated_pulls(session, scenario)
    if any(scenarios.is_author(pull, current_user.username) for pull in gated):
        abort(403)  # deleting it would lift the gate of the deleter's own PR
    gate.lifted(session, gated, scenario, current_user.username, how="scenario deleted")
    try:
        authoring.delete(session, scenario)
    except scenarios.ScenarioRefused as exc:
        session.rollback()
        flash(f"Not deleted: {exc}.", "error")
        return redirect(url_for(".show", scenario_id=scenario_id))
    events.record(
        session, "scenario.deleted", f"scenario “{title}” deleted by {current_user.username}",
        scenario_id=scenario_id, actor=current_user.username,
        pull_request_ids=[pull.id for pull in gated],
    )  # fmt: skip
    session.commit()
    flash(f"Scenario “{title}” deleted.", "success")
    return redirect(url_for(".index"))
