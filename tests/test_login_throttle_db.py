"""Login throttling on the controller's real databases: SQLite and MariaDB/MySQL alike.

Replicas share one DB, so the counts must add up when two sessions count at once, and rows made
up by a guesser must not pile up.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from pullre import migrate
from pullre.accounts import login_throttle
from pullre.db import make_engine, make_session_factory
from pullre.models import LoginThrottle

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'controller.db'}"
    else:
        url = request.getfixturevalue("mysql_database_url")
    migrate.upgrade(url)
    engine = make_engine(url)
    yield make_session_factory(engine)
    engine.dispose()


def fail(sessions: sessionmaker[Session], keys: login_throttle.Keys, at: datetime) -> int:
    with sessions() as session:
        locked = login_throttle.record_failure(session, keys, at)
        session.commit()
        return locked


def test_counts_lock_double_and_are_forgotten(sessions: sessionmaker[Session]) -> None:
    keys = login_throttle.Keys.of("alice", "192.0.2.1")
    free = login_throttle.FREE_ACCOUNT_FAILURES
    locks = [fail(sessions, keys, NOW + timedelta(seconds=n)) for n in range(free + 4)]
    assert locks == [0] * free + [1, 2, 4, 8]
    with sessions() as session:
        assert login_throttle.seconds_locked(session, keys, NOW + timedelta(seconds=free + 3)) == 8
        assert login_throttle.seconds_locked(session, keys, NOW + timedelta(seconds=60)) == 0
        login_throttle.forget_account(session, keys)
        session.commit()
    # The account starts over; the address keeps counting.
    assert fail(sessions, keys, NOW + timedelta(minutes=2)) == 0
    with sessions() as session:
        counts = dict(session.execute(select(LoginThrottle.subject, LoginThrottle.failures)).all())
    assert counts == {"user:alice": 1, "address:192.0.2.1": free + 5}


def test_a_second_replica_counts_on_the_row_the_first_made(sessions: sessionmaker[Session]) -> None:
    keys = login_throttle.Keys.of("bob", "192.0.2.2")
    with sessions() as first, sessions() as second:
        login_throttle.record_failure(first, keys, NOW)
        first.commit()
        login_throttle.record_failure(second, keys, NOW)
        second.commit()
    with sessions() as session:
        failures = session.scalar(
            select(LoginThrottle.failures).where(LoginThrottle.subject == "user:bob")
        )
    assert failures == 2


def test_names_a_guesser_makes_up_do_not_pile_up(sessions: sessionmaker[Session]) -> None:
    for n in range(30):
        fail(sessions, login_throttle.Keys.of(f"made-up-{n}", "198.51.100.1"), NOW)
    later = NOW + login_throttle.WINDOW + login_throttle.MAX_LOCK + timedelta(seconds=1)
    fail(sessions, login_throttle.Keys.of("carol", "192.0.2.3"), later)
    with sessions() as session:
        left = set(session.scalars(select(LoginThrottle.subject)))
    assert left == {"user:carol", "address:192.0.2.3"}
