"""A pull request's acceptance scenarios in the UI: attach them, run them step by step.

Members and admins alike run scenarios (business owners are members); the rules that matter
are enforced here on the server whatever a page shows: a run is recorded only by whoever
started it, only on the PR's current head, and never by the PR's author unless
``[pool] allow_self_signoff`` is on. Every form is a POST with the session's CSRF token, and
answers with a redirect (post/redirect/get), so the run page works without JavaScript;
``static/scenario_run.js`` only adds keyboard shortcuts.

Running a scenario is using the environment: starting a run wakes a sleeping one (the runner
needs the app), and every step shown or recorded resets its idle-sleep and expiry clocks.

The routes join the ``scenarios`` blueprint (``pullre.web.scenarios``, the scenario library),
so their endpoints stay ``scenarios.*``; importing this module adds them, before
``create_app`` registers the blueprint.
"""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from pullre.clock import Clock, system_clock
from pullre.config import Settings
from pullre.github.port import GitHub, GitHubError
from pullre.models import PullRequest, Scenario, ScenarioFetch, ScenarioRun
from pullre.policies import sleep
from pullre.scenarios import acceptance as scenarios
from pullre.scenarios import gate
from pullre.scenarios import sources as scenario_sources
from pullre.web import activity, ports, request_clock
from pullre.web.bounded_numbers import form_int
from pullre.web.db_session import get_session, writing
from pullre.web.scenarios import blueprint


def _settings() -> Settings:
    settings: Settings = current_app.extensions["pullre.settings"]
    return settings


def _clock() -> Clock:
    return request_clock.clock()


def _pull(pull_request_id: int) -> PullRequest:
    pull = get_session().get(PullRequest, pull_request_id)
    if pull is None:
        abort(404)
    return pull


def _github() -> GitHub | None:
    try:
        return ports.github()
    except GitHubError:
        return None


def _read_repository(pull: PullRequest, *, force: bool = False) -> None:
    """Read the PR's ``.pullre/scenarios`` when its head moved; no transaction during the read."""
    session = get_session()
    if not force and not scenario_sources.needs_fetch(session, pull):
        return
    github = _github()
    owner, name, sha = pull.repository.owner, pull.repository.name, pull.head_sha
    session.commit()
    if github is None:
        fetched = scenario_sources.Fetched(sha, errors=["GitHub is not configured"])
        fetched.complete = False
    else:
        fetched = scenario_sources.fetch(github, owner, name, sha)
    # The page is a GET, whose session only reads: the result is stored in a write
    # transaction of its own, which the read session's next transaction then sees.
    with writing() as write:
        fresh = write.get(PullRequest, pull.id)
        if fresh is not None:
            scenario_sources.store(write, fresh, fetched, system_clock)


@blueprint.get("/pulls/<int:pull_request_id>/scenarios")
def for_pull(pull_request_id: int) -> str:
    pull = _pull(pull_request_id)
    _read_repository(pull)
    session = get_session()
    standings = scenarios.standings(session, pull)
    attached = {standing.scenario.id for standing in standings}
    available = [
        s
        for s in session.scalars(
            select(Scenario).where(Scenario.pull_request_id.is_(None)).order_by(Scenario.title)
        )
        if s.id not in attached
    ]
    return render_template(
        "scenarios/pull.html",
        pull=pull,
        standings=standings,
        available=available,
        fetch=session.get(ScenarioFetch, pull.id),
        is_author=scenarios.is_author(pull, current_user.username),
        allow_self_signoff=_settings().pool.allow_self_signoff,
        title=f"Scenarios of {pull.repository.full_name}#{pull.number}",
    )


@blueprint.post("/pulls/<int:pull_request_id>/scenarios/refresh")
def refresh(pull_request_id: int) -> Response:
    _read_repository(_pull(pull_request_id), force=True)
    flash("Scenarios read again from the pull request's head commit.", "success")
    return redirect(url_for(".for_pull", pull_request_id=pull_request_id))


@blueprint.post("/pulls/<int:pull_request_id>/scenarios/attach")
def attach(pull_request_id: int) -> Response:
    pull, session = _pull(pull_request_id), get_session()
    scenario = session.get(Scenario, form_int("scenario_id") or 0)
    if scenario is None or scenario.pull_request_id is not None:
        abort(400)
    scenarios.attach(session, pull, scenario, current_user.username)
    session.commit()
    flash(f"“{scenario.title}” attached to #{pull.number}.", "success")
    return redirect(url_for(".for_pull", pull_request_id=pull_request_id))


@blueprint.post("/pulls/<int:pull_request_id>/scenarios/<int:scenario_id>/detach")
def detach(pull_request_id: int, scenario_id: int) -> Response:
    pull, session = _pull(pull_request_id), get_session()
    scenario = session.get(Scenario, scenario_id) or abort(404)
    user = current_user
    if not gate.may_lift(scenario, pull, user.id, user.username, admin=user.is_admin):
        abort(403)
    gate.detach(session, pull, scenario, current_user.username)
    session.commit()
    flash(f"“{scenario.title}” detached (a matching label still attaches it).", "success")
    return redirect(url_for(".for_pull", pull_request_id=pull_request_id))


@blueprint.post("/pulls/<int:pull_request_id>/scenarios/<int:scenario_id>/runs")
def start(pull_request_id: int, scenario_id: int) -> Response:
    pull, session = _pull(pull_request_id), get_session()
    scenario = session.get(Scenario, scenario_id)
    if scenario is None or scenario.id not in {s.id for s, _ in scenarios.attached(session, pull)}:
        abort(404)
    try:
        run = scenarios.start_run(
            session, pull, scenario, runner_id=current_user.id,
            runner_name=current_user.username,
            allow_self_signoff=_settings().pool.allow_self_signoff, clock=system_clock,
        )  # fmt: skip
    except scenarios.ScenarioRefused as exc:
        session.rollback()
        flash(f"Not started: {exc}.", "error")
        return redirect(url_for(".for_pull", pull_request_id=pull_request_id))
    environment = sleep.touch(session, pull, _clock())
    if environment is not None and sleep.wake(
        session, environment, why="scenario run started", clock=_clock(),
        actor=current_user.username,
    ):  # fmt: skip
        flash(
            f"#{pull.number} was asleep: it is waking up, and its app is back in a few minutes.",
            "info",
        )
    session.commit()
    return redirect(url_for(".step", run_id=run.id, number=1))


def _run(run_id: int) -> tuple[ScenarioRun, PullRequest]:
    run = get_session().get(ScenarioRun, run_id)
    if run is None:
        abort(404)
    return run, _pull(run.pull_request_id)


@blueprint.route("/scenario-runs/<int:run_id>/steps/<int:number>", methods=["GET", "POST"])
def step(run_id: int, number: int) -> Response | str:
    run, pull = _run(run_id)
    if not 1 <= number <= len(run.steps):
        abort(404)
    session = get_session()
    if request.method == "POST":
        sleep.touch(session, pull, _clock())
        session.commit()
    else:  # a GET's session only reads: the touch gets a write transaction of its own
        session.commit()
        activity.touch(pull.id)
    if request.method == "POST":
        try:
            scenarios.record_step(
                session, run, pull, number - 1, status=request.form.get("status", ""),
                note=request.form.get("note", ""), runner_id=current_user.id,
                clock=system_clock,
            )  # fmt: skip
        except scenarios.ScenarioRefused as exc:
            session.rollback()
            flash(f"Not recorded: {exc}.", "error")
            return redirect(url_for(".step", run_id=run_id, number=number))
        session.commit()
        if number < len(run.steps):
            return redirect(url_for(".step", run_id=run_id, number=number + 1))
        return redirect(url_for(".summary", run_id=run_id))
    earlier = [
        (index, run.steps[index], run.results[index] if index < len(run.results) else {})
        for index in range(number - 1)
    ]
    return render_template(
        "scenarios/step.html", run=run, pull=pull, number=number, step=run.steps[number - 1],
        result=run.results[number - 1], mine=run.runner_id == current_user.id,
        stale=run.head_sha != pull.head_sha, title=f"Step {number} of {len(run.steps)}",
        scenario=session.get(Scenario, run.scenario_id), earlier=earlier,
    )  # fmt: skip


@blueprint.get("/scenario-runs/<int:run_id>")
def summary(run_id: int) -> str:
    run, pull = _run(run_id)
    scenario = get_session().get(Scenario, run.scenario_id)
    return render_template(
        "scenarios/run.html", run=run, pull=pull, scenario=scenario,
        outcome=scenarios.outcome(run), stale=run.head_sha != pull.head_sha,
        title="Scenario run",
    )  # fmt: skip
