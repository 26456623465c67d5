"""Engine and sessions built from settings.

SQLite is the embedded default, so it gets the settings a server database has by nature:
foreign keys enforced, a busy timeout instead of instant "database is locked", and real
transactions (pysqlite's own BEGIN handling breaks SAVEPOINT, which both the reconcile lease
and the rolled-back test transactions rely on).

Transactions that may write begin IMMEDIATE on SQLite: a deferred one that reads, then writes
after another connection committed, fails at once with SQLITE_BUSY_SNAPSHOT (no busy wait can
save it), which is exactly what a webhook and a reconcile pass writing together would hit.
Taking the write lock up front makes writers queue on the busy timeout instead; the price is that
code must not hold a transaction open across slow calls (GitHub, EC2, a schema clone), which the
reconciler avoids by committing before each of them.

Work that only reads (pages, the API's GETs) uses :func:`make_read_session_factory`: its
transactions begin DEFERRED, so in WAL mode they read a snapshot beside any writer instead of
queueing for the one write lock, and a read session refuses to flush, so a read that tries to
write fails loudly in tests rather than meeting SQLITE_BUSY_SNAPSHOT under load. MySQL needs
neither: its sessions are the same for both.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Execution option naming how a SQLite transaction begins (IMMEDIATE unless told DEFERRED).
SQLITE_BEGIN = "pullre_sqlite_begin"


class ReadOnlySessionError(RuntimeError):
    """Something tried to write through a session made for reading."""


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
        mode = connection.get_execution_options().get(SQLITE_BEGIN, "IMMEDIATE")
        connection.exec_driver_sql("BEGIN DEFERRED" if mode == "DEFERRED" else "BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def make_read_session_factory(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """Sessions like ``factory``'s for work that only reads: deferred on SQLite, never flushing.

    A factory bound to a ``Connection`` (the tests' rolled-back transaction) keeps it: that
    connection is already in a transaction, so there is nothing to begin.
    """
    options = dict(factory.kw)
    bind = options.get("bind")
    if isinstance(bind, Engine):
        options["bind"] = bind.execution_options(**{SQLITE_BEGIN: "DEFERRED"})
    read_factory: sessionmaker[Session] = sessionmaker(**options)
    event.listen(read_factory, "before_flush", _refuse_writes)
    return read_factory


def _refuse_writes(session: Session, _context: Any, _instances: Any) -> None:
    changed = any(session.is_modified(instance) for instance in session.dirty)
    if session.new or session.deleted or changed:
        raise ReadOnlySessionError(
            "a read-only session was asked to write; do the write in a write session"
        )
