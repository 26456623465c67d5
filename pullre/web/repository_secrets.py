"""Admin: a repository's secrets, write-only: names, when and by whom set; never a value.

A value typed here is encrypted and saved, then forgotten by the page: the form is rendered with
its value field empty even after a refusal, so no answer of the controller carries a value.
The rules and words are :mod:`pullre.secrets`'s, shared with ``python -m pullre secret``.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired

from pullre.models import Repository
from pullre.secrets import store
from pullre.secrets.names import SecretError, check_name
from pullre.web.auth import require_admin
from pullre.web.db_session import get_session
from pullre.web.request_clock import clock

blueprint = Blueprint("repository_secrets", __name__, url_prefix="/repositories")
blueprint.before_request(require_admin)


class SecretForm(FlaskForm):  # type: ignore[misc]
    name = StringField(
        "Name",
        validators=[DataRequired()],
        filters=[lambda value: value.strip() if isinstance(value, str) else value],
        description="An environment variable name, e.g. STRIPE_KEY. Setting an existing name "
        "replaces its value.",
    )
    value = TextAreaField(
        "Value",
        validators=[DataRequired()],
        description="Never shown again. The app receives it as an environment variable; logs "
        "show *** in its place.",
        render_kw={"autocomplete": "off", "spellcheck": "false", "rows": 3},
    )


def _get(repository_id: int) -> Repository:
    repository = get_session().get(Repository, repository_id)
    if repository is None:
        abort(404)
    return repository


def _page(repository: Repository, form: SecretForm) -> str:
    form.value.data = ""  # write-only, even when the form comes back with an error
    return render_template(
        "repositories/secrets.html",
        repository=repository,
        secrets=store.listed(get_session(), repository),
        form=form,
    )


def _value(text: str) -> str:
    """As typed in a browser: CRLF line ends as LF, one trailing newline dropped (as the CLI)."""
    return text.replace("\r\n", "\n").removesuffix("\n")


def _valid(form: SecretForm) -> bool:
    """The store's rules, each refusal shown on its own field."""
    for check, wrong, data in (
        (check_name, form.name, form.name.data),
        (store.check_value, form.value, _value(form.value.data)),
    ):
        try:
            check(data)
        except SecretError as exc:
            wrong.errors.append(str(exc))
            return False
    return True


def _redeploy_note(count: int) -> str:
    return f" {count} environment(s) will redeploy." if count else ""


@blueprint.route("/<int:repository_id>/secrets", methods=["GET", "POST"])
def index(repository_id: int) -> Response | str:
    repository = _get(repository_id)
    form = SecretForm()
    if form.validate_on_submit() and _valid(form):
        session = get_session()
        count = store.set_secret(
            session,
            repository,
            form.name.data,
            _value(form.value.data),
            actor=current_user.username,
            secret_key=current_app.config["SECRET_KEY"],
            clock=clock(),
        )
        session.commit()
        flash(f"Secret {form.name.data} set.{_redeploy_note(count)}", "success")
        return redirect(url_for(".index", repository_id=repository.id))
    return _page(repository, form)


@blueprint.post("/<int:repository_id>/secrets/<name>/remove")
def remove(repository_id: int, name: str) -> Response:
    repository = _get(repository_id)
    session = get_session()
    try:
        count = store.remove_secret(
            session, repository, name, actor=current_user.username, clock=clock()
        )
    except SecretError as exc:
        flash(str(exc), "error")
    else:
        session.commit()
        flash(f"Secret {name} removed.{_redeploy_note(count)}", "success")
    return redirect(url_for(".index", repository_id=repository.id))
