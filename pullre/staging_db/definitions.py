"""Views, triggers, routines and events of a cloned schema: recreated from SHOW CREATE.

Definers: every object is recreated with ``DEFINER`` = the PR's own user (``'pr_<repo>_<n>'@'%'``),
keeping its SQL SECURITY. Keeping the source's definer would break wherever that account does not
exist. ``DEFINER=CURRENT_USER`` (the admin) with ``SQL SECURITY INVOKER`` would not be safe:
triggers always run as their definer, and the PR user — which runs untrusted PR code with ALL on
its schema — may ``ALTER PROCEDURE ... SQL SECURITY DEFINER``, or replace a procedure that an
admin-owned trigger calls, and so run its own SQL with admin rights. With the PR user as definer
nothing in the schema can do more than the PR user can. The cost: the admin account needs SUPER
(MariaDB) or SET_USER_ID (MySQL 8) to name another definer, and the objects work only once the
PR user exists (``create_user``).

References to the source schema inside definitions (views always qualify them) are rewritten to
the target; a string literal that happens to contain ```source`.`` is rewritten too.

Order: routines first (a view may call a function), then views with their bases first, then
triggers (after the rows are in, so loading does not fire them), then events.
"""

from __future__ import annotations

import graphlib
import re

import pymysql
import pymysql.cursors

from pullre.staging_db.connection import error_code
from pullre.staging_db.names import quote_identifier, quote_schema

#: Rows copied verbatim: 0 stays 0 in an AUTO_INCREMENT column (as mysqldump loads), and
#: non-strict so a zero date the source holds is accepted again.
LOAD_SQL_MODE = "NO_AUTO_VALUE_ON_ZERO"
_NAME = r"(?:`(?:[^`]|``)*`|'(?:[^'\\]|''|\\.)*'|[\w.$%-]+)"
DEFINER = re.compile(
    rf"\bDEFINER\s*=\s*(?:CURRENT_USER(?:\s*\(\s*\))?|{_NAME}(?:\s*@\s*{_NAME})?)", re.I
)
ER_SPECIFIC_ACCESS_DENIED = 1227


class StepFailed(Exception):
    """Which object a clone was making when the server said no, and what it said."""

    def __init__(self, step: str, cause: BaseException) -> None:
        super().__init__(step)
        self.step = step
        self.cause = cause


class Definitions:
    def __init__(
        self, cursor: pymysql.cursors.Cursor, source: str, target: str, *, definer: str
    ) -> None:
        self.cursor = cursor
        self.source = source
        self.target = target
        self.definer = definer
        self.counts = {"views": 0, "triggers": 0, "routines": 0, "events": 0}

    def copy(self) -> None:
        self._routines()
        self._views()
        self._triggers()
        self._events()

    def _routines(self) -> None:
        self.cursor.execute(
            "SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES "
            "WHERE ROUTINE_SCHEMA = %s AND ROUTINE_TYPE IN ('PROCEDURE', 'FUNCTION') "
            "ORDER BY ROUTINE_TYPE, ROUTINE_NAME",
            (self.source,),
        )
        for name, kind in list(self.cursor.fetchall()):
            row = self._show(str(kind), str(name))
            self._create_as(f"creating {str(kind).lower()} {name}", str(row[1]), str(row[2]))
            self.counts["routines"] += 1

    def _views(self) -> None:
        """Bases first; where the server cannot say what a view uses, retry until no progress."""
        self.cursor.execute(
            "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = %s "
            "ORDER BY TABLE_NAME",
            (self.source,),
        )
        pending = self._dependency_order([str(name) for (name,) in self.cursor.fetchall()])
        while pending:
            failed: list[tuple[str, pymysql.err.MySQLError]] = []
            for view in pending:
                statement = self._rewrite(f"creating view {view}", str(self._show("VIEW", view)[1]))
                try:
                    self.cursor.execute(statement)
                except pymysql.err.MySQLError as exc:
                    if error_code(exc) == ER_SPECIFIC_ACCESS_DENIED:
                        raise StepFailed(f"creating view {view}", exc) from None
                    failed.append((view, exc))
                else:
                    self.counts["views"] += 1
            if len(failed) == len(pending):
                view, first = failed[0]
                raise StepFailed(f"creating view {view}", first)
            pending = [view for view, _ in failed]

    def _dependency_order(self, views: list[str]) -> list[str]:
        self.cursor.execute(
            "SELECT COUNT(*) FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = 'information_schema' AND TABLE_NAME = 'VIEW_TABLE_USAGE'"
        )
        row = self.cursor.fetchone()
        if not views or row is None or not row[0]:  # MariaDB: no VIEW_TABLE_USAGE
            return views
        self.cursor.execute(
            "SELECT VIEW_NAME, TABLE_NAME FROM information_schema.VIEW_TABLE_USAGE "
            "WHERE VIEW_SCHEMA = %s AND TABLE_SCHEMA = %s",
            (self.source, self.source),
        )
        graph: dict[str, set[str]] = {view: set() for view in views}
        for view, used in self.cursor.fetchall():
            if str(view) in graph and str(used) in graph:
                graph[str(view)].add(str(used))
        try:
            return list(graphlib.TopologicalSorter(graph).static_order())
        except graphlib.CycleError:
            return views

    def _triggers(self) -> None:
        # In firing order, so each new trigger is appended where the source had it.
        self.cursor.execute(
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s "
            "ORDER BY EVENT_OBJECT_TABLE, EVENT_MANIPULATION, ACTION_TIMING, ACTION_ORDER",
            (self.source,),
        )
        for (name,) in list(self.cursor.fetchall()):
            row = self._show("TRIGGER", str(name))
            self._create_as(f"creating trigger {name}", str(row[1]), str(row[2]))
            self.counts["triggers"] += 1

    def _events(self) -> None:
        self.cursor.execute(
            "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s "
            "ORDER BY EVENT_NAME",
            (self.source,),
        )
        for (name,) in list(self.cursor.fetchall()):
            row = self._show("EVENT", str(name))
            # Schedules are stored in the time zone they were written in.
            self.cursor.execute("SET SESSION time_zone = %s", (str(row[2]),))
            try:
                self._create_as(f"creating event {name}", str(row[1]), str(row[3]))
            finally:
                self.cursor.execute("SET SESSION time_zone = DEFAULT")
            self.counts["events"] += 1

    def _show(self, kind: str, name: str) -> tuple[object, ...]:
        try:
            self.cursor.execute(
                f"SHOW CREATE {kind} {quote_schema(self.source)}.{quote_identifier(name)}"
            )
        except pymysql.err.MySQLError as exc:
            raise StepFailed(f"reading {kind.lower()} {name}", exc) from None
        row = self.cursor.fetchone()
        if row is None:
            raise StepFailed(f"reading {kind.lower()} {name}", LookupError("it vanished"))
        return tuple(row)

    def _create_as(self, step: str, sql_mode: str, statement: str) -> None:
        """Under the sql_mode the object was made with: the server stores it and parses by it."""
        statement = self._rewrite(step, statement)
        try:
            self.cursor.execute("SET SESSION sql_mode = %s", (sql_mode,))
            try:
                self.cursor.execute(statement)
            finally:
                self.cursor.execute("SET SESSION sql_mode = %s", (LOAD_SQL_MODE,))
        except pymysql.err.MySQLError as exc:
            raise StepFailed(step, exc) from None

    def _rewrite(self, step: str, statement: str) -> str:
        statement, found = DEFINER.subn(f"DEFINER={self.definer}", statement, count=1)
        if not found:
            raise StepFailed(step, LookupError("the server showed no DEFINER clause to replace"))
        return retarget(statement, self.source, self.target)


def retarget(statement: str, source: str, target: str) -> str:
    """Point ```source`.x`` and ``source.x`` at the target; ``t.source.x`` is left alone."""
    quoted = re.compile(rf"(?<![\w`$.]){re.escape(quote_schema(source))}\.")
    bare = re.compile(rf"(?<![\w`$.]){re.escape(source)}\.(?=[`\w$])")
    statement = quoted.sub(lambda _: f"{quote_schema(target)}.", statement)
    return bare.sub(lambda _: f"{target}.", statement)
