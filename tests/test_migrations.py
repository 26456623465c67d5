"""Alembic revisions against real databases: SQLite (the default) and MariaDB/MySQL.

The comparison with the models is what catches a model change committed without a revision.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.orm import Session

from pullre import migrate
from pullre.db import make_engine
from pullre.models import Base, Event, PullRequest, Repository


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'controller.db'}"
    url: str = request.getfixturevalue("mysql_database_url")
    return url


@pytest.fixture
def engine(empty_database_url: str) -> Iterator[Engine]:
    engine = make_engine(empty_database_url)
    yield engine
    engine.dispose()


def schema_differences(engine: Engine) -> list[Any]:
    """What ``alembic revision --autogenerate`` would put in a new revision; [] when in sync."""
    with engine.connect() as connection:
        # The same comparison options as migrations/env.py uses for autogenerate.
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences: list[Any] = compare_metadata(context, Base.metadata)
        return differences


def table_names(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


MODEL_TABLES = set(Base.metadata.tables)


def test_upgrade_from_empty_to_head_matches_the_models(
    empty_database_url: str, engine: Engine
) -> None:
    assert table_names(engine) == set()
    assert not migrate.is_up_to_date(engine)

    migrate.upgrade(empty_database_url)

    assert migrate.is_up_to_date(engine)
    assert migrate.current_revision(engine) == migrate.head_revision(empty_database_url)
    assert table_names(engine) == MODEL_TABLES | {"alembic_version"}
    assert schema_differences(engine) == []


def test_downgrade_to_base_and_up_to_head_again(empty_database_url: str, engine: Engine) -> None:
    migrate.upgrade(empty_database_url)

    migrate.downgrade(empty_database_url)

    assert table_names(engine) <= {"alembic_version"}
    assert migrate.current_revision(engine) is None
    assert not migrate.is_up_to_date(engine)

    migrate.upgrade(empty_database_url)

    assert migrate.is_up_to_date(engine)
    assert table_names(engine) == MODEL_TABLES | {"alembic_version"}
    assert schema_differences(engine) == []


def test_comparison_reports_a_schema_that_drifted_from_the_models(
    empty_database_url: str, engine: Engine
) -> None:
    """Guards the guard: an empty difference list above must mean "in sync", not "blind"."""
    migrate.upgrade(empty_database_url)
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE servers ADD COLUMN stray INTEGER"))

    differences = schema_differences(engine)

    assert [(d[0], d[2], d[3].name) for d in differences] == [("remove_column", "servers", "stray")]


def test_migrated_schema_round_trips_json_booleans_and_utc_times(
    empty_database_url: str, engine: Engine
) -> None:
    migrate.upgrade(empty_database_url)
    opened = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    with Session(engine) as session:
        repository = Repository(owner="acme", name="shop", enabled=False)
        session.add(repository)
        session.flush()
        session.add_all(
            [
                PullRequest(
                    repository=repository,
                    number=7,
                    labels=["staging", "ünïcode ✓"],
                    draft=True,
                    opened_at=opened,
                ),
                Event(
                    kind="test",
                    repository_id=repository.id,
                    message="m",
                    details={"nested": {"n": 1, "ok": True}},
                ),
            ]
        )
        session.commit()

    with Session(engine) as session:
        pull = session.query(PullRequest).one()
        event = session.query(Event).one()
        assert pull.labels == ["staging", "ünïcode ✓"]
        assert pull.draft is True
        assert pull.repository.enabled is False
        assert pull.opened_at == opened
        assert pull.opened_at.tzinfo is UTC
        assert event.details == {"nested": {"n": 1, "ok": True}}
