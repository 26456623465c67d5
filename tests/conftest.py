"""Shared fixtures: a migrated controller database, each test inside a rolled-back transaction.

Real services (MariaDB, moto's EC2 server, the GitHub stand-in, Chromium) come from the plugin
modules listed below, one per boundary.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from pullre import migrate
from pullre.db import make_engine

pytest_plugins: list[str] = [
    "tests.mysql_fixtures",
    "tests.ec2_fixtures",
    "tests.web_fixtures",
    "tests.github_fixtures",
    "tests.browser_fixtures",
    "tests.reconcile_fixtures",
    "tests.cli_fixtures",
    "tests.agent_fixtures",
]


@pytest.fixture(scope="session")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite controller DB migrated to head once per test session."""
    path: Path = tmp_path_factory.mktemp("db") / "pullre.db"
    url = f"sqlite:///{path}"
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="session")
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> Iterator[sessionmaker[Session]]:
    """Sessions bound to one outer transaction that is rolled back after the test.

    Code under test may commit freely: its commits become SAVEPOINT releases inside the outer
    transaction, so every test starts from the same empty, migrated database.
    """
    connection = engine.connect()
    transaction = connection.begin()
    factory = sessionmaker(
        bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )
    yield factory
    transaction.rollback()
    connection.close()


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    with session_factory() as session:
        yield session
