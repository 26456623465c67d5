"""Engine and sessions built from settings.

SQLite is the embedded default, so it gets the settings a server database has by nature:
foreign keys enforced, a busy timeout instead of instant "database is locked", and real
transactions (pysqlite's own BEGIN handling breaks SAVEPOINT, which both the reconcile lease
and the rolled-back test transactions rely on).

Transactions on SQLite begin IMMEDIATE: a deferred one that reads, then writes after another
connection committed, fails at once with SQLITE_BUSY_SNAPSHOT (no busy wait can save it),
which is exactly what a webhook and a reconcile pass writing together would hit. Taking the
write lock up front makes writers queue on the busy timeout instead; the price is that code
must not hold a transaction open across slow calls (GitHub, EC2, a schema clone), which the
reconciler avoids by committing before each of them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000


def make_engine(database_url: str, **kwargs: Any) -> Engine:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_recycle", 3600)
    return create_engine(url, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy emit BEGIN itself
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
