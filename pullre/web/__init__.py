"""The controller's web app: ``create_app`` wires one concern per module (Flask's app factory)."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from pullre.config import Settings
from pullre.db import make_engine, make_session_factory
from pullre.web import (
    auth,
    dashboard,
    db_session,
    errors,
    github_users,
    health,
    repositories,
    security_headers,
    users,
)

REPO_ROOT = Path(__file__).resolve().parent.parent.parent

log = logging.getLogger(__name__)


def create_app(
    settings: Settings, *, session_factory: sessionmaker[Session] | None = None
) -> Flask:
    """Build the app; tests pass a ``session_factory`` bound to their rolled-back transaction."""
    app = Flask(
        __name__,
        template_folder=str(REPO_ROOT / "templates"),
        static_folder=str(REPO_ROOT / "static"),
    )
    app.config.update(
        SECRET_KEY=settings.controller.secret_key or _stored_secret_key(settings),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.controller.public_url.startswith("https://"),
        WTF_CSRF_TIME_LIMIT=None,  # tied to the session instead, which expires on logout
    )
    app.extensions["pullre.settings"] = settings
    if session_factory is None:
        session_factory = make_session_factory(make_engine(settings.controller.database_url))

    db_session.init_app(app, session_factory)
    auth.init_app(app)
    errors.init_app(app)
    security_headers.init_app(app)
    for module in (health, dashboard, repositories, github_users, users):
        app.register_blueprint(module.blueprint)
    return app


def _stored_secret_key(settings: Settings) -> str:
    """Read the generated key, creating it (owner-only) on first start."""
    path = Path(settings.controller.secret_key_file)
    if path.is_file():
        key = path.read_text(encoding="utf-8").strip()
        if key:
            return key
    key = secrets.token_hex(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    log.info("generated a new secret key in %s", path)
    return key
