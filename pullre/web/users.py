"""Admin: the people who log in to pullre, and their roles."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_user
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from pullre import events
from pullre.accounts import user_accounts as accounts
from pullre.models import Role, User
from pullre.web.auth import SessionUser, end_sessions, require_admin
from pullre.web.db_session import commit_or_report_duplicate, get_session
from pullre.web.forms import UserForm

blueprint = Blueprint("users", __name__, url_prefix="/users")
blueprint.before_request(require_admin)


@blueprint.get("/")
def index() -> str:
    users = get_session().scalars(select(User).order_by(User.username))
    return render_template("users/index.html", users=users.all())


def _get(user_id: int) -> User:
    user = get_session().get(User, user_id)
    if user is None:
        abort(404)
    return user


def _other_active_admins(user: User) -> int:
    return (
        get_session().scalar(
            select(func.count())
            .select_from(User)
            .where(User.role == Role.ADMIN, User.active.is_(True), User.id != user.id)
        )
        or 0
    )


def _save(form: UserForm, user: User) -> bool:
    session = get_session()
    message = f"A user named {form.username.data} already exists."
    clash = session.scalar(
        select(User.id).where(User.username == form.username.data, User.id != user.id)
    )
    if clash is not None:
        form.username.errors.append(message)
        return False
    role, active = Role(form.role.data), form.active.data
    demoted = user.id is not None and user.is_admin and not (role is Role.ADMIN and active)
    if demoted and _other_active_admins(user) == 0:
        form.role.errors.append("This is the last active admin; keep at least one.")
        return False
    if user.id is None and not form.password.data:
        form.password.errors.append("A new user needs a password.")
        return False
    if form.password.data:
        user.password_hash = accounts.hash_password(form.password.data)
        if user.id is not None:
            end_sessions(user)  # a reset password must lock out whoever held the old one
    user.username, user.role, user.active = form.username.data, role, active
    session.add(user)
    events.record(session, "user.saved", f"user {user.username} saved ({role.value})")
    saved = commit_or_report_duplicate(form.username.errors, message)
    if saved and user.id == current_user.id:
        login_user(SessionUser.of(user))  # the admin who changed their own password stays in
    return saved


@blueprint.route("/new", methods=["GET", "POST"])
def create() -> Response | str:
    form = UserForm()
    if form.validate_on_submit() and _save(form, User()):
        flash(f"User {form.username.data} added.", "success")
        return redirect(url_for(".index"))
    return render_template("form.html", form=form, title="Add a user")


@blueprint.route("/<int:user_id>/edit", methods=["GET", "POST"])
def edit(user_id: int) -> Response | str:
    user = _get(user_id)
    form = UserForm(obj=user, role=user.role.value)
    if form.validate_on_submit() and _save(form, user):
        flash(f"User {user.username} saved.", "success")
        return redirect(url_for(".index"))
    return render_template("form.html", form=form, title=f"Edit {user.username}")


@blueprint.post("/<int:user_id>/delete")
def delete(user_id: int) -> Response:
    user = _get(user_id)
    if user.id == current_user.id:
        flash("You cannot remove your own account.", "error")
        return redirect(url_for(".index"))
    if user.is_admin and _other_active_admins(user) == 0:
        flash("This is the last active admin; keep at least one.", "error")
        return redirect(url_for(".index"))
    session = get_session()
    session.delete(user)
    events.record(session, "user.removed", f"user {user.username} removed")
    session.commit()
    flash(f"User {user.username} removed.", "success")
    return redirect(url_for(".index"))
