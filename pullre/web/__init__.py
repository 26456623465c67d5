"""The controller's web app: ``create_app`` wires one concern per module (Flask's app factory)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from flask import Flask
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.middleware.proxy_fix import ProxyFix

from pullre.config import Settings
from pullre.db import make_engine, make_session_factory
from pullre.ec2.port import Ec2
from pullre.github.port import GitHub
from pullre.reconcile.nudge import Nudger
from pullre.secret_key import resolve_secret_key
from pullre.web import (
    agent_api,
    api,
    api_actions,  # noqa: F401  importing it adds the PR action routes to api's blueprint
    assignment_wait,
    auth,
    bounded_numbers,
    dashboard,
    db_session,
    errors,
    events,
    github_users,
    health,
    metrics,
    page_cache,
    ports,
    pull_live,
    pull_scenarios,  # noqa: F401  importing it adds a PR's scenario routes to the blueprint
    pulls,
    repositories,
    repository_secrets,
    scenarios,
    schedules,
    security_headers,
    server_settings,
    servers,
    tokens,
    users,
    webhook,
)

REPO_ROOT = Path(__file__).resolve().parent.parent.parent


def create_app(
    settings: Settings,
    *,
    session_factory: sessionmaker[Session] | None = None,
    nudger: Nudger | None = None,
    ec2: Callable[[], Ec2] | None = None,
    github: Callable[[], GitHub] | None = None,
) -> Flask:
    """Build the app; tests pass a ``session_factory`` bound to their rolled-back transaction.

    ``nudger`` runs the reconcile passes webhooks ask for; without one they wait for cron.
    ``ec2`` and ``github`` build the ports the servers and scenarios pages use, on first use, so
    the app starts without AWS or GitHub credentials; entry points pass the real adapters'
    factories, and the app never imports an adapter itself (an import-linter contract).
    """
    app = Flask(
        __name__,
        template_folder=str(REPO_ROOT / "templates"),
        static_folder=str(REPO_ROOT / "static"),
    )
    bounded_numbers.init_app(app)  # before any blueprint adds an <int:...> route
    app.config.update(
        SECRET_KEY=resolve_secret_key(settings),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.controller.public_url.startswith("https://"),
        WTF_CSRF_TIME_LIMIT=None,  # tied to the session instead, which expires on logout
        # Read no more than this of any body (413 beyond); the webhook raises its own limit.
        MAX_CONTENT_LENGTH=errors.MAX_REQUEST_BYTES,
    )
    app.extensions["pullre.settings"] = settings
    if settings.controller.trusted_proxies:
        proxies = settings.controller.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies)  # type: ignore[method-assign]
    if session_factory is None:
        session_factory = make_session_factory(make_engine(settings.controller.database_url))

    db_session.init_app(app, session_factory)
    page_cache.init_app(app, session_factory.kw.get("bind"))
    auth.init_app(app)
    errors.init_app(app)
    security_headers.init_app(app)
    for module in (
        health,
        dashboard,
        pulls,
        pull_live,
        scenarios,  # with pull_scenarios' routes: a PR's scenarios and their runs
        events,
        repositories,
        repository_secrets,
        schedules,
        github_users,
        users,
        servers,
        server_settings,
        tokens,
    ):
        app.register_blueprint(module.blueprint)
    app.register_blueprint(agent_api.blueprint)
    db_session.writes_on_every_method(app, agent_api.blueprint.name)
    app.extensions[assignment_wait.WAIT_SLOTS_KEY] = threading.BoundedSemaphore(
        settings.controller.agent_wait_slots
    )
    auth.csrf.exempt(agent_api.blueprint)  # bearer-token API: no browser session to forge
    app.register_blueprint(api.blueprint)  # with api_actions' routes: acting on one PR
    auth.csrf.exempt(api.blueprint)  # bearer tokens only; it never reads the session cookie
    app.register_blueprint(metrics.blueprint)
    auth.csrf.exempt(metrics.blueprint)  # its own bearer token, like the agent API
    webhook.init_app(app, nudger)
    ports.init_app(app, ec2=ec2, github=github)
    return app
