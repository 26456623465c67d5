"""Admin: the pool of staging servers, and the account's EC2 instances that could join it.

EC2 is reached through the :class:`~pullre.ec2.Ec2` port given to ``create_app``, or built
from ``[aws]`` on first use, so the app starts (and every other page works) without AWS
credentials. An EC2 failure is a message on this page, never a 500.

A new agent token is rendered straight into the response to the POST that made it, with
``Cache-Control: no-store``: never flashed, because flashed messages travel in the (signed but
readable) session cookie, and never redirected to, because a URL ends up in logs and history.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import StringField
from wtforms.validators import DataRequired, ValidationError

from pullre.config import Settings
from pullre.ec2.port import MIN_PAGE_SIZE, Ec2Error, InstancePage
from pullre.models import Server
from pullre.policies import office_hours
from pullre.servers import power_rules
from pullre.servers import registry as servers
from pullre.servers import settings as server_settings
from pullre.web import agent_bundle, ports, request_clock
from pullre.web.auth import require_admin
from pullre.web.bounded_numbers import lenient_query_int
from pullre.web.db_session import get_session

blueprint = Blueprint("servers", __name__, url_prefix="/servers")
blueprint.before_request(require_admin)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


def _checked(check: servers.Check) -> Callable[[FlaskForm, StringField], None]:
    """A WTForms validator from the domain's check, so the UI and the CLI refuse alike."""

    def validate(form: FlaskForm, field: StringField) -> None:
        try:
            check(field.data or "")
        except ValueError as exc:
            raise ValidationError(str(exc)) from None

    return validate


class RegisterForm(FlaskForm):  # type: ignore[misc]
    instance_id = StringField(
        "Instance id",
        validators=[DataRequired(), _checked(servers.check_instance_id)],
        filters=[_strip],
    )
    name = StringField("Name", filters=[_strip], description="Shown in the UI and PR comments.")
    staging_url = StringField(
        "Staging URL",
        validators=[DataRequired(), _checked(servers.check_staging_url)],
        filters=[_strip],
        description="Where reviewers open this server's PR, e.g. https://stage-1.example.com",
    )


def _ec2_listing() -> tuple[InstancePage | None, str | None]:
    """One page of the account's instances, or the message saying why there is none."""
    tag = request.args.get("tag", "").strip()
    try:
        tag_filter = servers.parse_tag_filter(tag) if tag else None
        return ports.ec2().list_instances(tag_filter, request.args.get("page"), _page_size()), None
    except ValueError as exc:
        return None, str(exc)
    except Ec2Error as exc:
        return None, f"Could not list EC2 instances: {exc}"


def _page_size() -> int:
    size = lenient_query_int("per_page") or DEFAULT_PAGE_SIZE
    return min(max(size, MIN_PAGE_SIZE), MAX_PAGE_SIZE)


def _power_refused(action: str, server: Server, held_by: str | None = None) -> str | None:
    """The page's Start/Stop follow the rule the actions enforce, on the last observed state."""
    return power_rules.why_not(action, server.instance_id, server.observed_state, held_by)


def settings() -> Settings:
    settings: Settings = current_app.extensions["pullre.settings"]
    return settings


@blueprint.get("/")
def index() -> str:
    session = get_session()
    page, ec2_error = _ec2_listing()
    cost = settings().cost
    return render_template(
        "servers/index.html",
        rows=servers.server_rows(session),
        outside=server_settings.outside_servers(session),
        price=lambda server: server_settings.applied_price(server, cost.instance_prices).describe(
            cost.currency, server.instance_type
        ),
        next_start_or_stop=server_settings.next_start_or_stop,
        describe_hours=office_hours.describe,
        registered=servers.registered_instance_ids(session),
        page=page,
        ec2_error=ec2_error,
        tag=request.args.get("tag", "").strip(),
        per_page=_page_size(),
        first_page=not request.args.get("page"),
        now=request_clock.now(),
        age=servers.age,
        runs_as_text=servers.RUNS_AS_TEXT,
        agent_outdated=agent_bundle.outdated,
        agent_identity=agent_bundle.current().identity,
        power_refused=_power_refused,
    )


def _token_page(server: Server, token: str, title: str) -> Response:
    response = make_response(
        render_template("servers/token.html", server=server, token=token, title=title)
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.route("/register", methods=["GET", "POST"])
def register() -> Response | str:
    form = RegisterForm() if request.method == "POST" else RegisterForm(data=request.args)
    if form.validate_on_submit():
        session = get_session()
        try:
            server, token = servers.register_server(
                session, form.instance_id.data, form.staging_url.data, form.name.data or ""
            )
        except servers.ServerError as exc:
            session.rollback()
            form.instance_id.errors.append(str(exc))
        else:
            session.commit()
            return _token_page(server, token, f"{server.instance_id} registered")
    return render_template("form.html", form=form, title="Register a server")


def get_server(server_id: int, *, in_pool: bool = True) -> Server:
    """A known server; pool actions (token, remove) also want it in the pool."""
    server = get_session().get(Server, server_id)
    if server is None or (in_pool and not server.in_pool):
        abort(404)
    return server


@blueprint.post("/<int:server_id>/token")
def token(server_id: int) -> Response:
    session = get_session()
    server = get_server(server_id)
    new_token = servers.rotate_token(session, server)
    session.commit()
    return _token_page(server, new_token, f"New agent token for {server.instance_id}")


@blueprint.post("/<int:server_id>/remove")
def remove(server_id: int) -> Response:
    session = get_session()
    server = get_server(server_id)
    try:
        servers.remove_server(session, server)
    except servers.ServerError as exc:
        flash(str(exc), "error")
    else:
        session.commit()
        flash(f"{server.instance_id} removed from the pool.", "success")
    return redirect(url_for(".index"))


@blueprint.post("/<int:server_id>/clean")
def mark_clean(server_id: int) -> Response:
    session = get_session()
    server = get_server(server_id, in_pool=False)
    servers.mark_clean(session, server, current_user.username)
    session.commit()
    flash(f"{server.instance_id} marked clean; it takes pull requests again.", "success")
    return redirect(url_for(".index"))


@blueprint.post("/<int:server_id>/start")
def start(server_id: int) -> Response:
    return _change(server_id, servers.start_server)


@blueprint.post("/<int:server_id>/stop")
def stop(server_id: int) -> Response:
    return _change(server_id, servers.stop_server)


def _change(server_id: int, action: servers.Action) -> Response:
    session = get_session()
    server = get_server(server_id, in_pool=False)
    try:
        state = action(session, ports.ec2(), server)
    except (servers.ServerError, Ec2Error) as exc:
        flash(str(exc), "error")
    else:
        note = ""
        if (
            action is servers.start_server
            and server.in_pool
            and servers.holder(session, server) is None
        ):
            note = " No PR holds it, so the next reconcile pass stops it again."
        flash(f"{server.instance_id} is {state}.{note}", "success")
    # Also on failure: the error event and the server's last error are worth keeping.
    session.commit()
    return redirect(url_for(".index"))
