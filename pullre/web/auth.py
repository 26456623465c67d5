"""Login, logout and the gate in front of every page.

The gate is one ``before_request`` hook with an allow-list of public endpoints, so a new view is
private by default: forgetting a decorator cannot publish a page.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    flash,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import LoginManager, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFProtect
from werkzeug.wrappers import Response as BaseResponse

from pullre import events
from pullre.accounts import login_throttle
from pullre.accounts import user_accounts as accounts
from pullre.models import Role, User
from pullre.web.db_session import get_session
from pullre.web.forms import LoginForm
from pullre.web.request_clock import now as clock_now

log = logging.getLogger(__name__)

#: Endpoints anyone may reach. Everything else needs a logged-in user.
#: The webhook authenticates itself with its signature instead, /metrics with its bearer token.
PUBLIC_ENDPOINTS = frozenset(
    {"auth.login", "health.healthz", "metrics.scrape", "static", "webhook.receive"}
)
#: Blueprints that check a token of their own on every request instead of a login session.
TOKEN_BLUEPRINTS = frozenset({"agent_api", "api"})

blueprint = Blueprint("auth", __name__)
csrf = CSRFProtect()
login_manager = LoginManager()
login_manager.session_protection = "strong"


@dataclass(frozen=True)
class SessionUser:
    """What a request needs to know about its user, detached from any DB session."""

    id: int
    username: str
    role: Role
    #: The user's ``session_generation`` when this session began; see :func:`_load_user`.
    generation: int = 0
    is_authenticated: bool = True
    is_active: bool = True
    is_anonymous: bool = False

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def get_id(self) -> str:
        """What the session cookie carries: the id and the generation it was issued for."""
        return f"{self.id}.{self.generation}"

    @classmethod
    def of(cls, user: User) -> SessionUser:
        return cls(
            id=user.id,
            username=user.username,
            role=user.role,
            generation=user.session_generation or 0,
        )


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.user_loader(_load_user)
    # The login gate runs before the CSRF check, so an anonymous POST is sent to the login page.
    app.before_request(_require_login)
    csrf.init_app(app)
    app.register_blueprint(blueprint)


def _load_user(session_id: str) -> SessionUser | None:
    """The session's user, unless it was deactivated or its sessions were ended since.

    Logout and a password change raise the user's generation, so a cookie issued before (copied
    to another browser, or stolen) no longer matches and counts as logged out.
    """
    user_id, _, generation = session_id.partition(".")
    if not (user_id.isascii() and user_id.isdigit() and generation.isascii()):
        return None
    if not generation.isdigit() or len(user_id) > 18:
        return None
    user = get_session().get(User, int(user_id))
    if user is None or not user.active or int(generation) != (user.session_generation or 0):
        return None
    return SessionUser.of(user)


def end_sessions(user: User) -> None:
    """End every login session of ``user`` (the caller commits)."""
    user.session_generation = (user.session_generation or 0) + 1


def wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return request.path.startswith("/api/") or best == "application/json"


def _require_login() -> BaseResponse | tuple[Response, int] | None:
    # Token APIs first, so their requests never read the session: a login cookie must not
    # count there. A wrong method or path under /api/ has no blueprint; it gets its JSON
    # 405/404 without login (the API's routes are public in the README anyway).
    if request.blueprint in TOKEN_BLUEPRINTS:
        return None
    if request.routing_exception is not None and request.path.startswith("/api/"):
        return None
    if request.endpoint in PUBLIC_ENDPOINTS or current_user.is_authenticated:
        return None
    if wants_json():
        return jsonify(error="authentication required"), 401
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def require_admin() -> None:
    """Blueprint hook for admin-only areas: members get 403, enforced on the server."""
    if not current_user.is_authenticated or not current_user.is_admin:
        abort(403)


def _safe_next(target: str | None) -> str:
    """Only same-site paths, so the login form cannot be used as an open redirect."""
    if not target:
        return url_for("dashboard.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("dashboard.index")
    return target


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> BaseResponse | str:
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    form = LoginForm()
    if form.validate_on_submit():
        return _attempt(form)
    status = 200 if not form.is_submitted() else 401
    return render_template("login.html", form=form), status  # type: ignore[return-value]


def _attempt(form: LoginForm) -> BaseResponse:
    """Check a submitted password, unless this account or address is locked for now."""
    session, now = get_session(), clock_now()
    username, address = form.username.data or "", request.remote_addr
    keys = login_throttle.Keys.of(username, address)
    wait = login_throttle.seconds_locked(session, keys, now)
    if wait:
        log.warning("login refused for %r from %s: locked for %d s", username, address, wait)
        return _refused(form, wait)
    user = accounts.authenticate(session, username, form.password.data or "")
    if user is not None:
        login_throttle.forget_account(session, keys)
        session.commit()
        login_user(SessionUser.of(user))
        return redirect(_safe_next(request.args.get("next")))
    wait = login_throttle.record_failure(session, keys, now)
    locked = f"; locked for {wait} s" if wait else ""
    events.record(
        session,
        "login.failed",
        f"failed login for {username[:100]!r} from {address}{locked}",
        username=username[:100],
        address=address,
    )
    session.commit()
    if wait:
        return _refused(form, wait)
    form.password.errors.append("Unknown user or wrong password.")
    return _form(form, 401)


def _refused(form: LoginForm, wait: int) -> BaseResponse:
    form.password.errors.append(
        f"Too many failed logins. Wait {wait} second{'s' if wait != 1 else ''} and try again."
    )
    response = _form(form, 429)
    response.headers["Retry-After"] = str(wait)
    return response


def _form(form: LoginForm, status: int) -> BaseResponse:
    return make_response(render_template("login.html", form=form), status)


@blueprint.post("/logout")
def logout() -> BaseResponse:
    """Ends this session and every other one of the same user (another browser, a copied
    cookie): a person who logs out expects to be out."""
    session = get_session()
    user = session.get(User, current_user.id)
    if user is not None:
        end_sessions(user)
        session.commit()
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))
