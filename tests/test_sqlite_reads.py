"""Pages and the API's GETs read beside a writer on SQLite instead of queueing for its lock."""

from __future__ import annotations

import json
import sqlite3
import threading
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from pullre import migrate
from pullre.accounts import api_tokens
from pullre.accounts import user_accounts as accounts
from pullre.db import (
    ReadOnlySessionError,
    make_engine,
    make_read_session_factory,
    make_session_factory,
)
from pullre.models import ApiToken, Environment, EnvironmentStatus, PullRequest, Repository, Role
from tests.web_fixtures import LiveServer

#: Far below the 30 s busy timeout a request queued behind the writer would wait.
ANSWER_WITHIN_S = 10.0


@pytest.fixture
def sqlite_file(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'reads.db'}"
    migrate.upgrade(url)
    return url


def _seed(factory: sessionmaker[Session]) -> tuple[int, str]:
    with factory() as session:
        owner = accounts.create_user(session, "reader", "a long password 123", Role.MEMBER)
        repository = Repository(id=77, owner="acme", name="shop", base_schema="shop")
        pull = PullRequest(
            repository=repository,
            number=5,
            title="Reads",
            author_login="alice",
            head_ref="reads",
            head_sha="a" * 40,
            opened_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
        session.add_all([repository, pull])
        session.add(Environment(pull_request=pull, status=EnvironmentStatus.QUEUED))
        _, secret = api_tokens.create_token(session, owner, "reads")
        session.commit()
        return pull.id, secret


@pytest.fixture
def writer_holding_the_lock(live_server: LiveServer) -> Iterator[sqlite3.Connection]:
    """Another process's long write transaction, as a reconcile pass holds between commits."""
    path = live_server.settings.controller.database_url.removeprefix("sqlite:///")
    connection = sqlite3.connect(path, isolation_level=None, timeout=0.1)
    yield connection
    if connection.in_transaction:
        connection.execute("ROLLBACK")
    connection.close()


def _get(url: str, secret: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if secret:
        request.add_header("Authorization", f"Bearer {secret}")
    with urllib.request.urlopen(request, timeout=ANSWER_WITHIN_S) as response:
        return response.status, response.read().decode()


def test_the_api_lists_pulls_while_a_writer_holds_the_lock(
    live_server: LiveServer, writer_holding_the_lock: sqlite3.Connection
) -> None:
    pull_id, secret = _seed(live_server.session_factory)
    # The token's first use is a write: let it land before the writer takes the lock.
    assert _get(f"{live_server.url}/api/v1/pulls", secret)[0] == 200
    writer_holding_the_lock.execute("BEGIN IMMEDIATE")
    writer_holding_the_lock.execute("UPDATE repositories SET base_schema = 'changing'")

    status, body = _get(f"{live_server.url}/api/v1/pulls", secret)
    assert status == 200
    assert [item["id"] for item in json.loads(body)["items"]] == [pull_id]
    # Reads see the last committed state, not the writer's uncommitted change.
    status, body = _get(f"{live_server.url}/api/v1/repositories", secret)
    assert [item["base_schema"] for item in json.loads(body)["items"]] == ["shop"]


def test_a_get_that_writes_does_it_in_its_own_short_transaction(
    live_server: LiveServer,
) -> None:
    pull_id, secret = _seed(live_server.session_factory)
    assert _get(f"{live_server.url}/api/v1/pulls/{pull_id}", secret)[0] == 200
    with live_server.session_factory() as session:
        environment = session.scalars(select(Environment)).one()
        token = session.scalars(select(ApiToken)).one()
        assert environment.last_activity_at is not None  # the GET counted as activity
        assert token.last_used_at is not None


def test_a_read_session_refuses_to_write(sqlite_file: str) -> None:
    engine = make_engine(sqlite_file)
    try:
        read = make_read_session_factory(make_session_factory(engine))
        with read() as session:
            session.add(Repository(id=1, owner="acme", name="shop", base_schema="shop"))
            with pytest.raises(ReadOnlySessionError):
                session.flush()
    finally:
        engine.dispose()


def test_read_sessions_read_beside_a_held_write_lock(sqlite_file: str) -> None:
    engine = make_engine(sqlite_file)
    writes = make_session_factory(engine)
    reads = make_read_session_factory(writes)
    with writes() as session:
        session.add(Repository(id=1, owner="acme", name="shop", base_schema="shop"))
        session.commit()
    holder = sqlite3.connect(sqlite_file.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    read_done = threading.Event()
    names: list[str] = []

    def read() -> None:
        with reads() as session:
            names.extend(session.scalars(select(Repository.name)))
        read_done.set()

    thread = threading.Thread(target=read)
    thread.start()
    try:
        assert read_done.wait(ANSWER_WITHIN_S), "a read waited for the write lock"
        assert names == ["shop"]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        thread.join()
        engine.dispose()
