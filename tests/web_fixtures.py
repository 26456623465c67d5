"""The web app under test: in-process clients on the rolled-back session, or a real server.

``app``/``client`` share the test's transaction (fast, isolated); ``clock`` puts a clock the test
moves behind the app's requests. ``live_server`` runs the app in cheroot (CherryPy's HTTP server)
on a migrated SQLite file of its own, for the browser tests.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cheroot import wsgi
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from pullre import migrate
from pullre.accounts import user_accounts as accounts
from pullre.config import Settings, load_settings
from pullre.db import make_engine, make_session_factory
from pullre.github.port import GitHub
from pullre.models import Role
from pullre.web import create_app
from pullre.web.request_clock import CLOCK_KEY
from tests.clock import MovingClock

PASSWORD = "correct horse battery"
MakeUser = Callable[..., str]
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
#: Where the ``clock`` fixture starts: Tuesday 2026-11-24, 10:00 UTC.
CLOCK_START = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def make_settings(database_url: str, tmp_path: Path, **environ: str) -> Settings:
    return load_settings(
        environ={
            "PULLRE_CONTROLLER_DATABASE_URL": database_url,
            "PULLRE_CONTROLLER_SECRET_KEY": "test-secret-key-0123456789",
            "PULLRE_CONTROLLER_SECRET_KEY_FILE": str(tmp_path / "secret.key"),
            **environ,
        }
    )


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, tmp_path)


@pytest.fixture
def app(settings: Settings, session_factory: sessionmaker[Session]) -> Flask:
    app = create_app(settings, session_factory=session_factory)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def clock(app: Flask) -> MovingClock:
    """The clock the app reads for every request, at ``CLOCK_START`` until the test moves it."""
    found = MovingClock(CLOCK_START)
    app.extensions[CLOCK_KEY] = found
    return found


def csrf_token(client: FlaskClient, path: str) -> str:
    """The token from a page's form, as a browser would submit it."""
    match = _CSRF.search(client.get(path).get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


@pytest.fixture
def make_user(session: Session) -> MakeUser:
    def make(username: str, role: Role = Role.MEMBER) -> str:
        accounts.create_user(session, username, PASSWORD, role)
        session.commit()
        return username

    return make


def log_in(client: FlaskClient, username: str) -> None:
    token = csrf_token(client, "/login")
    response = client.post(
        "/login", data={"username": username, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302, response.get_data(as_text=True)


def logged_in_client(app: Flask, username: str) -> FlaskClient:
    """A client of ``app`` with ``username`` logged in."""
    client = app.test_client()
    log_in(client, username)
    return client


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def admin_client(app: Flask, make_user: MakeUser) -> FlaskClient:
    return logged_in_client(app, make_user("root-admin", Role.ADMIN))


@pytest.fixture
def member_client(app: Flask, make_user: MakeUser) -> FlaskClient:
    return logged_in_client(app, make_user("member", Role.MEMBER))


@dataclass
class LiveServer:
    url: str
    settings: Settings
    session_factory: sessionmaker[Session]


@contextmanager
def serving(
    tmp_path: Path, *, github: Callable[[Settings], GitHub] | None = None, **environ: str
) -> Iterator[LiveServer]:
    """The real app in cheroot on a free port, over a fresh migrated SQLite file; ``environ``
    as ``PULLRE_*`` settings, ``github`` builds its GitHub port from the settings."""
    url = f"sqlite:///{tmp_path / 'live.db'}"
    migrate.upgrade(url)
    settings = make_settings(url, tmp_path, **environ)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    app = create_app(
        settings,
        session_factory=factory,
        github=(lambda: github(settings)) if github is not None else None,
    )
    server = wsgi.Server(("127.0.0.1", 0), app)
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    host, port = server.bind_addr
    try:
        yield LiveServer(url=f"http://{host}:{port}", settings=settings, session_factory=factory)
    finally:
        server.stop()
        thread.join(timeout=5)
        engine.dispose()


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """The real app in cheroot on a free port, over a fresh migrated SQLite file."""
    with serving(tmp_path) as server:
        yield server
