"""Pages computed once per change of the DB: never stale after a commit, anywhere it came from.

Everything here runs on a SQLite file with real commits (the shared fixtures' rolled-back
connection has no data version, so the rest of the suite computes every page afresh).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import Engine, create_engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from pullre import migrate
from pullre.accounts import user_accounts as accounts
from pullre.data_version import DataVersion
from pullre.db import make_engine, make_session_factory
from pullre.models import (
    DeployStep,
    EnvironmentStatus,
    PullRequest,
    Repository,
    Role,
    StepStatus,
)
from pullre.web import create_app
from pullre.web.page_cache import PageCache, page_cache
from pullre.web.request_clock import CLOCK_KEY
from tests.clock import MovingClock
from tests.page_seeds import add_pull, add_repository
from tests.web_fixtures import PASSWORD, logged_in_client, make_settings

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


@pytest.fixture
def file_engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'cached.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


def _add_pull(factory: sessionmaker[Session], number: int, status: EnvironmentStatus) -> int:
    """A PR of acme/shop with an environment in ``status``, committed; its id."""
    with factory() as session:
        repository = session.scalar(select(Repository)) or add_repository(session)
        pull = add_pull(session, repository, number, status=status, title=f"Change {number}")
        session.commit()
        return pull.id


def _commit_in_another_process(engine: Engine, statement: str) -> None:
    code = (
        "import sqlite3, sys\n"
        "connection = sqlite3.connect(sys.argv[1], timeout=30)\n"
        "connection.execute(sys.argv[2])\n"
        "connection.commit()\n"
    )
    database = engine.url.database
    assert database is not None
    subprocess.run([sys.executable, "-c", code, database, statement], check=True, timeout=60)


def test_the_version_moves_when_anyone_else_commits_and_only_then(file_engine: Engine) -> None:
    version = DataVersion.of(file_engine)
    factory = make_session_factory(file_engine)
    try:
        first = version.current()
        assert first is not None
        assert version.current() == first  # nothing committed: the same number

        _add_pull(factory, 1, status=EnvironmentStatus.QUEUED)  # this process, another connection
        after_own = version.current()
        assert after_own != first

        with factory() as session:  # a transaction that rolls back changes nothing
            session.execute(update(PullRequest).values(title="never"))
            session.rollback()
        assert version.current() == after_own

        _commit_in_another_process(file_engine, "UPDATE pull_requests SET title = 'elsewhere'")
        assert version.current() != after_own
    finally:
        version.close()


def test_there_is_no_version_where_no_other_connection_shares_the_data(
    file_engine: Engine,
) -> None:
    in_memory = make_engine("sqlite://")
    mysql = create_engine("mysql+pymysql://pullre@127.0.0.1:1/pullre")  # never connects
    try:
        with file_engine.connect() as connection:  # the tests' rolled-back transaction
            versions = [DataVersion.of(connection)]
        versions += [DataVersion.of(in_memory), DataVersion.of(mysql), DataVersion.of(None)]
        assert [(v.available, v.current()) for v in versions] == [(False, None)] * 4
        assert DataVersion.of(file_engine).available
    finally:
        in_memory.dispose()
        mysql.dispose()


def test_concurrent_misses_compute_once_and_a_commit_computes_again(
    file_engine: Engine,
) -> None:
    cache = PageCache(DataVersion.of(file_engine))
    computed: list[int] = []
    started = threading.Barrier(8)

    def compute() -> list[int]:
        computed.append(1)
        time.sleep(0.3)  # long enough for every other thread to ask meanwhile
        return [len(computed)]

    answers: list[list[int]] = []

    def ask() -> None:
        started.wait()
        answers.append(cache.get("page", compute))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(computed) == 1
    assert answers == [[1]] * 8

    assert cache.get("page", compute) == [1]  # kept while nothing is committed
    assert len(computed) == 1
    _add_pull(make_session_factory(file_engine), 1, status=EnvironmentStatus.QUEUED)
    assert cache.get("page", compute) == [2]
    assert cache.get("other page", compute) == [3]  # keys apart
    cache.close()


def test_a_value_that_depends_on_the_clock_is_kept_for_its_second_only(
    file_engine: Engine,
) -> None:
    cache = PageCache(DataVersion.of(file_engine))
    calls: list[datetime] = []

    def at(now: datetime) -> datetime:
        return cache.get("timed", lambda: calls.append(now) or now, now=now)

    assert at(T0) == T0
    assert at(T0 + timedelta(milliseconds=900)) == T0  # the same second
    assert at(T0 + timedelta(seconds=1)) == T0 + timedelta(seconds=1)
    assert len(calls) == 2
    cache.close()


def test_a_summary_is_kept_for_its_period_whatever_is_committed(file_engine: Engine) -> None:
    ticks = [0.0]
    cache = PageCache(DataVersion.of(file_engine), summary_seconds=60, timer=lambda: ticks[0])
    calls: list[int] = []

    def summary() -> int:
        calls.append(1)
        return len(calls)

    assert cache.summary("chart", summary) == 1
    _add_pull(make_session_factory(file_engine), 1, status=EnvironmentStatus.QUEUED)
    ticks[0] = 59
    assert cache.summary("chart", summary) == 1
    ticks[0] = 61
    assert cache.summary("chart", summary) == 2
    cache.close()


@pytest.fixture
def file_app(file_engine: Engine, tmp_path: Path) -> Iterator[tuple[Flask, sessionmaker[Session]]]:
    assert file_engine.url.database is not None
    settings = make_settings(f"sqlite:///{file_engine.url.database}", tmp_path)
    factory = make_session_factory(file_engine)
    with factory() as session:
        accounts.create_user(session, "viewer", PASSWORD, Role.MEMBER)
        session.commit()
    app = create_app(settings, session_factory=factory)
    yield app, factory
    with app.app_context():
        page_cache().close()  # its own connection to the file


def test_the_dashboard_shows_another_process_commit_on_the_next_request(
    file_app: tuple[Flask, sessionmaker[Session]], file_engine: Engine
) -> None:
    app, factory = file_app
    client = logged_in_client(app, "viewer")
    _add_pull(factory, 1, status=EnvironmentStatus.QUEUED)
    fragment = {"X-Requested-With": "fetch"}
    first = client.get("/", headers=fragment).get_data(as_text=True)
    assert "Change 1<" in first
    assert client.get("/", headers=fragment).get_data(as_text=True) == first  # kept

    _commit_in_another_process(file_engine, "UPDATE pull_requests SET title = 'Renamed by a pass'")
    assert "Renamed by a pass<" in client.get("/", headers=fragment).get_data(as_text=True)
    assert "Renamed by a pass<" in client.get("/").get_data(as_text=True)


def test_a_cached_deploy_progress_is_timed_as_of_each_request(
    file_app: tuple[Flask, sessionmaker[Session]],
) -> None:
    app, factory = file_app
    clock = MovingClock(T0 + timedelta(seconds=10))
    app.extensions[CLOCK_KEY] = clock
    pull_id = _add_pull(factory, 2, status=EnvironmentStatus.DEPLOYING)
    with factory() as session:
        pull = session.get(PullRequest, pull_id)
        assert pull is not None
        environment = pull.environments[0]
        session.add_all(
            DeployStep(
                environment_id=environment.id,
                head_sha=pull.head_sha,
                step=step,
                status=status,
                reported_at=T0,
            )
            for step, status in (("fetch", StepStatus.RUNNING), ("fetch", StepStatus.OK))
        )
        session.commit()
    client = logged_in_client(app, "viewer")
    fragment = {"X-Requested-With": "fetch"}
    assert "(fetch) for 10 s" in client.get("/", headers=fragment).get_data(as_text=True)
    clock.advance(seconds=40)  # no commit: the rows come from the cache, the time does not
    assert "(fetch) for 50 s" in client.get("/", headers=fragment).get_data(as_text=True)
