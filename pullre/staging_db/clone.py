"""Server-side clone of a schema: every row stays on the MySQL server.

A dump pipe (``mysqldump | mysql``) ships each row to the client as text and parses it back; here
the server copies rows itself (``INSERT ... SELECT``), several tables at once on their own
connections, and the client only sends DDL. Tables come from SHOW CREATE TABLE with foreign key
checks off (so creation order does not matter and loading skips the checks); views, triggers,
routines and events follow in :mod:`pullre.staging_db.definitions`.

A clone either completes or leaves no target behind: any failure drops what was made so far, so
the reconciler never mistakes a half-made schema for a ready one. Tables are copied one
transaction each, so a source written to during the clone gives a copy that is not one snapshot;
staging sources are templates, not live databases.
"""

from __future__ import annotations

import contextlib
import queue
import re
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import NoReturn

import pymysql
import pymysql.cursors

from pullre.staging_db.connection import (
    LOCK_WAIT_TIMEOUT_S,
    Conn,
    ServerAddress,
    connect,
    describe,
    error_code,
)
from pullre.staging_db.definitions import (
    ER_SPECIFIC_ACCESS_DENIED,
    LOAD_SQL_MODE,
    Definitions,
    StepFailed,
)
from pullre.staging_db.names import account, checked_schema, quote_identifier, quote_schema
from pullre.staging_db.port import CloneFailed, CloneResult, SourceMissing, StagingDatabaseError
from pullre.staging_db.users import drop_user, ensure_user, kill_sessions, user_exists

#: Enough to keep a server's disks busy without starving the PR environments that share it.
PARALLELISM = 4
GENERATED = re.compile(r"\b(?:VIRTUAL|STORED|PERSISTENT) GENERATED\b", re.IGNORECASE)
CHARSET_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")


def clone_schema(
    address: ServerAddress, source: str, target: str, *, owner: str, parallelism: int = PARALLELISM
) -> CloneResult:
    """Replace ``target`` by a copy of ``source``; on any failure ``target`` is gone afterwards."""
    checked_schema(source)
    checked_schema(target)
    if source == target:
        raise CloneFailed(f"cannot clone {source!r} onto itself", source, target)
    started = time.monotonic()
    conn = connect(address)
    try:
        cloner = _Cloner(address, conn, source, target, owner=owner, parallelism=parallelism)
        try:
            cloner.prepare()
        except pymysql.err.MySQLError as exc:
            raise CloneFailed(
                f"cloning {source} into {target} failed before it started: {describe(exc)}",
                source,
                target,
            ) from None
        try:
            cloner.run()
        except BaseException as exc:
            _fail(address, cloner, exc)
    finally:
        with contextlib.suppress(Exception):
            conn.close()
    return cloner.result(time.monotonic() - started)


def drop_schema(cursor: pymysql.cursors.Cursor, schema: str) -> None:
    cursor.execute("SET SESSION lock_wait_timeout = %s", (LOCK_WAIT_TIMEOUT_S,))
    cursor.execute(f"DROP DATABASE IF EXISTS {quote_schema(schema)}")


def _fail(address: ServerAddress, cloner: _Cloner, exc: BaseException) -> NoReturn:
    step, cause = (exc.step, exc.cause) if isinstance(exc, StepFailed) else (cloner.step, exc)
    reason = describe(cause) if isinstance(cause, pymysql.err.MySQLError) else str(cause)
    if error_code(cause) == ER_SPECIFIC_ACCESS_DENIED:
        reason += (
            " (the staging admin account needs SUPER on MariaDB or SET_USER_ID on MySQL 8 "
            "to make the PR user the definer)"
        )
    try:
        with contextlib.closing(connect(address)) as conn, conn.cursor() as cursor:
            drop_schema(cursor, cloner.target)
            if cloner.created_owner:  # a user that was there before (a reset) keeps working
                drop_user(cursor, cloner.owner)
        cleanup = f"the partial schema {cloner.target} was dropped"
    except (pymysql.err.MySQLError, StagingDatabaseError) as drop_exc:
        cleanup = f"the partial schema {cloner.target} could NOT be dropped: {describe(drop_exc)}"
    message = (
        f"cloning {cloner.source} into {cloner.target} failed while {step}: {reason}; {cleanup}"
    )
    if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit: cleaned up, now go on
        raise exc
    raise CloneFailed(message, cloner.source, cloner.target) from None


class _Cloner:
    def __init__(
        self,
        address: ServerAddress,
        conn: Conn,
        source: str,
        target: str,
        *,
        owner: str,
        parallelism: int,
    ) -> None:
        self.address = address
        self.cursor = conn.cursor()
        self.source = source
        self.target = target
        self.owner = owner
        self.created_owner = False
        self.parallelism = max(1, parallelism)
        self.step = "starting"
        self.counts = {
            "tables": 0,
            "rows": 0,
            "views": 0,
            "triggers": 0,
            "routines": 0,
            "events": 0,
        }
        self._stop = threading.Event()
        self._worker_ids: set[int] = set()
        self._lock = threading.Lock()

    def result(self, seconds: float) -> CloneResult:
        return CloneResult(source=self.source, target=self.target, seconds=seconds, **self.counts)

    def prepare(self) -> None:
        """Check the source, then drop any old target (the app's sessions first)."""
        cur = self.cursor
        cur.execute(
            "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME "
            "FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
            (self.source,),
        )
        row = cur.fetchone()
        if row is None:
            raise SourceMissing(self.source)
        self.charset, self.collation = str(row[0]), str(row[1])
        if not (CHARSET_NAME.fullmatch(self.charset) and CHARSET_NAME.fullmatch(self.collation)):
            raise ValueError(f"unexpected character set of {self.source}: {row!r}")
        kill_sessions(cur, self.owner)
        drop_schema(cur, self.target)
        self.created_owner = not user_exists(cur, self.owner)

    def run(self) -> None:
        cur = self.cursor
        self.step = f"creating {self.target}"
        cur.execute(
            f"CREATE DATABASE {quote_schema(self.target)} "
            f"CHARACTER SET {self.charset} COLLATE {self.collation}"
        )
        cur.execute(
            "SET SESSION sql_mode = %s, foreign_key_checks = 0, unique_checks = 0",
            (LOAD_SQL_MODE,),
        )
        cur.execute(f"USE {quote_schema(self.target)}")  # unqualified names in DDL land here
        self.step = f"creating the user {self.owner}"
        ensure_user(cur, self.owner, self.target)  # views check their definer when created
        tables = self._tables()
        self._create_tables(tables)
        self._copy_rows(tables)
        self.step = "copying views, triggers, routines and events"
        definitions = Definitions(cur, self.source, self.target, definer=account(self.owner))
        definitions.copy()
        self.counts.update(definitions.counts)

    # -- tables and rows ------------------------------------------------------------------------

    def _tables(self) -> list[str]:
        self.step = "listing tables"
        self.cursor.execute(
            "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
            "AND TABLE_TYPE <> 'VIEW' ORDER BY COALESCE(DATA_LENGTH, 0) DESC, TABLE_NAME",
            (self.source,),
        )
        rows = [(str(name), str(kind)) for name, kind in self.cursor.fetchall()]
        unsupported = [f"{name} ({kind.lower()})" for name, kind in rows if kind != "BASE TABLE"]
        if unsupported:
            problem = f"{self.source} holds objects pullre cannot clone: {', '.join(unsupported)}"
            raise StepFailed(self.step, ValueError(problem))
        return [name for name, _ in rows]

    def _create_tables(self, tables: list[str]) -> None:
        for table in tables:
            self.step = f"creating table {table}"
            self.cursor.execute(f"SHOW CREATE TABLE {self._src(table)}")
            row = self.cursor.fetchone()
            assert row is not None
            self.cursor.execute(str(row[1]))
            self.counts["tables"] += 1

    def _copy_rows(self, tables: list[str]) -> None:
        """Tables in parallel, each worker on its own connection (one connection runs one query)."""
        self.step = "copying rows"
        self.cursor.execute(
            "SELECT TABLE_NAME, COLUMN_NAME, EXTRA FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME, ORDINAL_POSITION",
            (self.source,),
        )
        columns: dict[str, list[str]] = {}
        for table, column, extra in self.cursor.fetchall():
            # Generated columns cannot be written; listing columns also copies INVISIBLE ones,
            # which SELECT * would leave out.
            if not GENERATED.search(str(extra or "")):
                columns.setdefault(str(table), []).append(quote_identifier(str(column)))
        jobs: queue.SimpleQueue[str] = queue.SimpleQueue()
        for table in tables:
            jobs.put(table)
        workers = min(self.parallelism, len(tables))
        if workers == 0:
            return
        with ThreadPoolExecutor(workers, thread_name_prefix="pullre-clone") as pool:
            futures = [pool.submit(self._copy_worker, jobs, columns) for _ in range(workers)]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            if any(future.exception() is not None for future in done):
                self._stop.set()
                self._interrupt_workers()
            wait(futures)
        # The first failure, not a neighbour that was interrupted because of it.
        for future in [*done, *futures]:
            error = future.exception()
            if error is not None:
                raise error

    def _copy_worker(self, jobs: queue.SimpleQueue[str], columns: dict[str, list[str]]) -> None:
        conn = connect(self.address)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT CONNECTION_ID()")
                (thread_id,) = cur.fetchone() or (0,)
                with self._lock:
                    self._worker_ids.add(int(thread_id))
                cur.execute(
                    "SET SESSION sql_mode = %s, foreign_key_checks = 0, unique_checks = 0",
                    (LOAD_SQL_MODE,),
                )
                while not self._stop.is_set():
                    try:
                        table = jobs.get_nowait()
                    except queue.Empty:
                        return
                    listed = ", ".join(columns.get(table, []))
                    if not listed:
                        continue  # only generated columns: nothing to store
                    try:
                        # Every name below went through quote_identifier/quote_schema.
                        rows = cur.execute(
                            f"INSERT INTO {self._dst(table)} ({listed}) "  # noqa: S608
                            f"SELECT {listed} FROM {self._src(table)}"
                        )
                    except pymysql.err.MySQLError as exc:
                        raise StepFailed(f"copying rows of {table}", exc) from None
                    with self._lock:
                        self.counts["rows"] += rows
        finally:
            with contextlib.suppress(Exception):
                conn.close()

    def _interrupt_workers(self) -> None:
        """One table failed: stop the others' long INSERTs instead of waiting for them."""
        with self._lock:
            ids = sorted(self._worker_ids)
        with (
            contextlib.suppress(pymysql.err.MySQLError, StagingDatabaseError),
            contextlib.closing(connect(self.address)) as conn,
            conn.cursor() as cur,
        ):
            for thread_id in ids:
                with contextlib.suppress(pymysql.err.MySQLError):
                    cur.execute("KILL QUERY %s", (thread_id,))

    def _src(self, name: str) -> str:
        return f"{quote_schema(self.source)}.{quote_identifier(name)}"

    def _dst(self, name: str) -> str:
        return f"{quote_schema(self.target)}.{quote_identifier(name)}"
