"""Admin: GitHub logins whose PRs clone their own source schema."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from pullre.models import GithubUser
from pullre.web.auth import require_admin
from pullre.web.db_session import commit_or_report_duplicate, get_session
from pullre.web.forms import GithubUserForm

blueprint = Blueprint("github_users", __name__, url_prefix="/github-users")
blueprint.before_request(require_admin)


@blueprint.get("/")
def index() -> str:
    people = get_session().scalars(select(GithubUser).order_by(GithubUser.login))
    return render_template("github_users/index.html", github_users=people.all())


def _get(github_user_id: int) -> GithubUser:
    person = get_session().get(GithubUser, github_user_id)
    if person is None:
        abort(404)
    return person


def _save(form: GithubUserForm, person: GithubUser) -> bool:
    session = get_session()
    # GitHub logins are case-insensitive; two rows for "Alice" and "alice" would be ambiguous.
    clash = session.scalar(
        select(GithubUser.id).where(
            func.lower(GithubUser.login) == form.login.data.lower(),
            GithubUser.id != person.id,
        )
    )
    message = f"{form.login.data} is already registered."
    if clash is not None:
        form.login.errors.append(message)
        return False
    person.login = form.login.data
    person.source_schema = form.source_schema.data
    session.add(person)
    return commit_or_report_duplicate(form.login.errors, message)


@blueprint.route("/new", methods=["GET", "POST"])
def create() -> Response | str:
    form = GithubUserForm()
    if form.validate_on_submit() and _save(form, GithubUser()):
        flash(f"GitHub user {form.login.data} added.", "success")
        return redirect(url_for(".index"))
    return render_template("form.html", form=form, title="Add a GitHub user")


@blueprint.route("/<int:github_user_id>/edit", methods=["GET", "POST"])
def edit(github_user_id: int) -> Response | str:
    person = _get(github_user_id)
    form = GithubUserForm(obj=person)
    if form.validate_on_submit() and _save(form, person):
        flash(f"GitHub user {person.login} saved.", "success")
        return redirect(url_for(".index"))
    return render_template("form.html", form=form, title=f"Edit {person.login}")


@blueprint.post("/<int:github_user_id>/delete")
def delete(github_user_id: int) -> Response:
    person = _get(github_user_id)
    session = get_session()
    session.delete(person)
    session.commit()
    flash(f"GitHub user {person.login} removed.", "success")
    return redirect(url_for(".index"))
