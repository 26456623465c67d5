"""Admin: the GitHub repositories pullre follows."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from pullre import events
from pullre.identifiers import split_full_name
from pullre.models import Approvers, Repository, Schedule, Trust
from pullre.policies import office_hours
from pullre.web.auth import require_admin
from pullre.web.db_session import commit_or_report_duplicate, get_session
from pullre.web.forms import RepositoryForm, blank_to_none, schedule_choices

blueprint = Blueprint("repositories", __name__, url_prefix="/repositories")
blueprint.before_request(require_admin)


@blueprint.get("/")
def index() -> str:
    repositories = get_session().scalars(
        select(Repository)
        .options(selectinload(Repository.schedule))
        .order_by(Repository.owner, Repository.name)
    )
    return render_template(
        "repositories/index.html", repositories=repositories.all(), describe=office_hours.describe
    )


def _with_schedules(form: RepositoryForm) -> RepositoryForm:
    schedules = get_session().scalars(select(Schedule).order_by(Schedule.name)).all()
    form.schedule_id.choices = schedule_choices(list(schedules), "None: always on")
    return form


def _get(repository_id: int) -> Repository:
    repository = get_session().get(Repository, repository_id)
    if repository is None:
        abort(404)
    return repository


def _save(form: RepositoryForm, repository: Repository) -> bool:
    owner, name = split_full_name(form.full_name.data)
    session = get_session()
    clash = session.scalar(
        select(Repository.id).where(
            Repository.owner == owner, Repository.name == name, Repository.id != repository.id
        )
    )
    if clash is not None:
        form.full_name.errors.append(f"{owner}/{name} is already registered.")
        return False
    repository.owner, repository.name = owner, name
    repository.base_schema = blank_to_none(form.base_schema.data)
    repository.required_label = blank_to_none(form.required_label.data)
    repository.enabled = form.enabled.data
    repository.trust = Trust(form.trust.data)
    repository.approvers = Approvers(form.approvers.data)
    # schedule_state stays: the pass compares it with the new hours and acts on the difference.
    repository.schedule_id = form.schedule_id.data
    repository.clone_url = blank_to_none(form.clone_url.data)
    session.add(repository)
    session.flush()
    events.record(
        session,
        "repository.saved",
        f"{owner}/{name} saved",
        repository_id=repository.id,
        trust=repository.trust.value,
        approvers=repository.approvers.value,
        clone_url=repository.clone_url,
    )
    return commit_or_report_duplicate(
        form.full_name.errors, f"{owner}/{name} is already registered."
    )


@blueprint.route("/new", methods=["GET", "POST"])
def create() -> Response | str:
    form = _with_schedules(RepositoryForm())
    if form.validate_on_submit() and _save(form, Repository()):
        flash(f"Repository {form.full_name.data} added.", "success")
        return redirect(url_for(".index"))
    return render_template("form.html", form=form, title="Add a repository")


@blueprint.route("/<int:repository_id>/edit", methods=["GET", "POST"])
def edit(repository_id: int) -> Response | str:
    repository = _get(repository_id)
    form = _with_schedules(RepositoryForm(obj=repository, full_name=repository.full_name))
    if form.validate_on_submit() and _save(form, repository):
        flash(f"Repository {repository.full_name} saved.", "success")
        return redirect(url_for(".index"))
    return render_template("form.html", form=form, title=f"Edit {repository.full_name}")


@blueprint.post("/<int:repository_id>/delete")
def delete(repository_id: int) -> Response:
    repository = _get(repository_id)
    session = get_session()
    events.record(session, "repository.removed", f"{repository.full_name} removed")
    session.delete(repository)
    session.commit()
    flash(f"Repository {repository.full_name} removed.", "success")
    return redirect(url_for(".index"))
