"""A number that moves whenever the controller DB may have changed: what page caches key on.

SQLite answers ``PRAGMA data_version`` with a number of the asking connection's own, which
changes whenever *another* connection commits: a request of this process, a reconcile pass in
another, a CLI command. Asked on one connection kept for this and never used to write, it is a
process-wide "has anything been committed since?" for a few microseconds, with no table to bump
and no write on any path (a counter row bumped by every commit would serialize all writers).

MySQL has no such number, nor does a database only this process can see (in memory, or the tests'
connection held in a rolled-back transaction): there :meth:`DataVersion.current` is None, and
callers compute every time.
"""

from __future__ import annotations

import sqlite3
import threading

from sqlalchemy import Connection, Engine

#: SQLite database names that are not a file other connections share.
_PRIVATE_DATABASES = frozenset({"", ":memory:"})


class DataVersion:
    """Asks SQLite for its data version on a dedicated connection, opened on first use."""

    def __init__(self, database: str | None, *, uri: bool = False) -> None:
        self._database = database
        self._uri = uri
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None

    @classmethod
    def of(cls, bind: Engine | Connection | None) -> DataVersion:
        """The version source for what ``bind`` reaches (None-answering where there is none)."""
        if not isinstance(bind, Engine) or bind.dialect.name != "sqlite":
            return cls(None)
        url = bind.url
        database = url.database or ""
        uri = str(url.query.get("uri", "")).lower() in {"true", "1"}
        if database in _PRIVATE_DATABASES or "mode=memory" in database:
            return cls(None)
        return cls(database, uri=uri)

    @property
    def available(self) -> bool:
        """Whether :meth:`current` gives numbers (False: it is always None)."""
        return self._database is not None

    def current(self) -> int | None:
        """The version now; it differs from an earlier answer iff someone committed since."""
        if self._database is None:
            return None
        with self._lock:
            if self._connection is None:
                # Autocommit: the PRAGMA runs in a read transaction of its own, so every call
                # sees the latest commit instead of a snapshot held open since the first.
                self._connection = sqlite3.connect(
                    self._database, uri=self._uri, check_same_thread=False, isolation_level=None
                )
            row = self._connection.execute("PRAGMA data_version").fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
