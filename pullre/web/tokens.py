"""Everyone's own API tokens: list, create, revoke; admins see and revoke everyone's.

A new token is rendered straight into the response to the POST that made it, with
``Cache-Control: no-store``: never flashed, because flashed messages travel in the (signed but
readable) session cookie, and never redirected to, because a URL ends up in logs and history.

Someone else's token is answered with 404 for a member, the same as one that does not exist.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, make_response, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from pullre.accounts import api_tokens
from pullre.models import User
from pullre.web.db_session import get_session

blueprint = Blueprint("tokens", __name__, url_prefix="/tokens")


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


class TokenForm(FlaskForm):  # type: ignore[misc]
    name = StringField(
        "Name",
        validators=[DataRequired(), Length(max=api_tokens.NAME_LENGTH)],
        filters=[_strip],
        description='What uses it, e.g. "CI smoke job", to tell it apart when revoking.',
    )


def _index(form: TokenForm) -> str:
    rows = api_tokens.visible_tokens(get_session(), current_user.id, everyone=current_user.is_admin)
    return render_template("tokens/index.html", rows=rows, form=form, title="API tokens")


@blueprint.get("/")
def index() -> str:
    return _index(TokenForm())


@blueprint.post("/")
def create() -> Response | str:
    form = TokenForm()
    if not form.validate_on_submit():
        return _index(form)
    session = get_session()
    owner = session.get(User, current_user.id)
    if owner is None:  # deleted between the login check and now
        abort(404)
    token, secret = api_tokens.create_token(session, owner, form.name.data)
    session.commit()
    response = make_response(render_template("tokens/created.html", token=token, secret=secret))
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.post("/<int:token_id>/revoke")
def revoke(token_id: int) -> Response:
    session = get_session()
    token = api_tokens.visible_token(
        session, token_id, current_user.id, everyone=current_user.is_admin
    )
    if token is None:
        abort(404)
    api_tokens.revoke_token(session, token, actor=current_user.username)
    session.commit()
    flash(f"Token {token.name} revoked.", "success")
    return redirect(url_for(".index"))
