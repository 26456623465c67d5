"""One ``PassRun`` row per reconcile pass that held the lease: what it did and what it cost.

Every pass may be a new process (cron), so ``/metrics`` and the dashboard cannot read counters
from memory: they read these rows. The GitHub and EC2 costs are *deltas* of the adapters'
running totals read before and after the pass, because in ``--loop`` mode and in the web app's
nudger one adapter serves many passes.

Rows older than ``RETENTION`` are pruned by the pass that writes a new row. ``/metrics`` exposes
sums over this table as Prometheus counters, and a counter must never go down (``rate()`` would
read the drop as a restart and report a huge spike), so pruning *folds* the deleted rows' additive
columns into the oldest row that stays, and ``passes_total`` is the highest row id rather than
the row count. The oldest kept row therefore stands for "this pass and every pruned one before
it" in those columns; charts of recent history never reach it.

Recording must never fail a pass: ``record`` catches and logs everything.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from pullre.clock import Clock
from pullre.ec2.port import Ec2
from pullre.github.port import GitHub
from pullre.models import (
    ACTIVE_ENVIRONMENT_STATUSES,
    Environment,
    EnvironmentStatus,
    PassRun,
    Server,
)

log = logging.getLogger(__name__)

RETENTION = timedelta(days=30)
#: Columns that add up across passes; pruning folds them into the oldest kept row.
ADDITIVE_COLUMNS = (
    "github_requests",
    "github_not_modified",
    "ec2_calls",
    "assigned",
    "released",
    "errors",
)


@dataclass(frozen=True)
class _Reading:
    github_requests: int
    github_not_modified: int
    ec2_calls: int


def _read(github: GitHub, ec2: Ec2) -> _Reading | None:
    """The adapters' running totals, or None: a port that cannot count must not stop a pass."""
    try:
        stats = github.stats
        return _Reading(stats.requests, stats.not_modified, sum(ec2.calls.values()))
    except Exception:
        log.warning("could not read the GitHub/EC2 call counters", exc_info=True)
        return None


class Meter:
    """Readings taken when a pass starts, to be subtracted from the ones when it ends."""

    def __init__(self, github: GitHub, ec2: Ec2, clock: Clock) -> None:
        self.github, self.ec2 = github, ec2
        self.started_at: datetime = clock()
        self._monotonic = time.monotonic()
        self._before = _read(github, ec2)

    def finish(self, *, assigned: int, released: int, errors: int) -> PassRun:
        """The row for this pass, with costs measured now; pool figures are filled by ``record``."""
        after = _read(self.github, self.ec2)
        if after is None or self._before is None:
            after = before = _Reading(0, 0, 0)  # unknown cost is recorded as none, not guessed
        else:
            before = self._before
        return PassRun(
            started_at=self.started_at,
            duration_ms=round((time.monotonic() - self._monotonic) * 1000),
            github_requests=after.github_requests - before.github_requests,
            github_not_modified=after.github_not_modified - before.github_not_modified,
            rate_limit_remaining=self.github.stats.rate_limit_remaining,
            ec2_calls=after.ec2_calls - before.ec2_calls,
            assigned=assigned,
            released=released,
            errors=errors,
        )


def record(
    sessions: sessionmaker[Session],
    meter: Meter,
    *,
    assigned: int,
    released: int,
    errors: int,
    clock: Clock,
) -> PassRun | None:
    """Store the pass's row and prune old ones; on any failure log it and return None."""
    try:
        run = meter.finish(assigned=assigned, released=released, errors=errors)
        with sessions() as session:
            _fill_pool_figures(session, run)
            session.add(run)
            session.flush()
            prune(session, clock() - RETENTION)
            session.commit()
        return run
    except Exception:  # history is a by-product: it must not fail the pass
        log.exception("could not record the pass history")
        return None


def _fill_pool_figures(session: Session, run: PassRun) -> None:
    run.pool_size = (
        session.scalar(select(func.count()).select_from(Server).where(Server.in_pool.is_(True)))
        or 0
    )
    run.busy_servers = (
        session.scalar(
            select(func.count(func.distinct(Environment.server_id)))
            .join(Server, Server.id == Environment.server_id)
            .where(
                Server.in_pool.is_(True),
                Environment.status.in_(ACTIVE_ENVIRONMENT_STATUSES),
            )
        )
        or 0
    )
    run.queued = (
        session.scalar(
            select(func.count())
            .select_from(Environment)
            .where(Environment.status == EnvironmentStatus.QUEUED)
        )
        or 0
    )


def prune(session: Session, cutoff: datetime) -> int:
    """Delete rows that started before ``cutoff``, folding their sums into the oldest kept row.

    The newest row is never deleted (its id is what ``passes_total`` reads), even if the clock
    says it is old.
    """
    newest = session.scalar(select(func.max(PassRun.id)))
    if newest is None:
        return 0
    old = (PassRun.started_at < cutoff) & (PassRun.id != newest)
    sums = session.execute(
        select(
            func.count(),
            *(func.coalesce(func.sum(getattr(PassRun, c)), 0) for c in ADDITIVE_COLUMNS),
        ).where(old)
    ).one()
    count = int(sums[0])
    if count == 0:
        return 0
    keeper = session.scalar(select(PassRun).where(~old).order_by(PassRun.id).limit(1))
    assert keeper is not None  # the newest row is never old
    for column, total in zip(ADDITIVE_COLUMNS, sums[1:], strict=True):
        setattr(keeper, column, getattr(keeper, column) + int(total))
    session.execute(delete(PassRun).where(old))
    log.info("pruned %d pass history rows older than %s", count, cutoff.isoformat())
    return count
