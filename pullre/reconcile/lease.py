"""A named lease in the controller DB, so two reconcile passes never act at the same time.

Taken with one conditional UPDATE (free, expired, or already ours), which is atomic on SQLite
and MySQL alike without advisory locks. A crashed holder stops renewing and its lease expires,
so the next pass takes over instead of waiting for a process that is gone.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from pullre.clock import Clock
from pullre.models import Lease


class LeaseLost(RuntimeError):
    """Another holder took the lease (ours expired): stop acting at once."""


class LeaseHandle:
    """A lease we hold; ``renew`` extends it and fails loudly if it was lost."""

    def __init__(
        self, engine: Engine, name: str, holder: str, ttl: timedelta, clock: Clock
    ) -> None:
        self.engine, self.name, self.holder, self.ttl, self.clock = (
            engine,
            name,
            holder,
            ttl,
            clock,
        )

    def renew(self) -> None:
        with self.engine.begin() as connection:
            result = connection.execute(
                update(Lease)
                .where(Lease.name == self.name, Lease.holder == self.holder)
                .values(expires_at=self.clock() + self.ttl)
            )
        if result.rowcount != 1:
            raise LeaseLost(f"lease {self.name!r} is no longer held by {self.holder}")

    def release(self) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                update(Lease)
                .where(Lease.name == self.name, Lease.holder == self.holder)
                .values(holder=None, expires_at=None)
            )


def try_acquire(
    engine: Engine, name: str, holder: str, ttl: timedelta, clock: Clock
) -> LeaseHandle | None:
    """The lease if it is free, expired or already ours; None while another holder has it."""
    _ensure_row(engine, name)
    now = clock()
    with engine.begin() as connection:
        result = connection.execute(
            update(Lease)
            .where(
                Lease.name == name,
                or_(Lease.holder.is_(None), Lease.expires_at < now, Lease.holder == holder),
            )
            .values(holder=holder, expires_at=now + ttl)
        )
    if result.rowcount != 1:
        return None
    return LeaseHandle(engine, name, holder, ttl, clock)


def current_holder(engine: Engine, name: str) -> tuple[str | None, datetime | None]:
    """Who holds the lease and until when, for the log line of a pass that has to wait."""
    with engine.connect() as connection:
        row = connection.execute(
            select(Lease.holder, Lease.expires_at).where(Lease.name == name)
        ).one_or_none()
    return (None, None) if row is None else (row.holder, row.expires_at)


def _ensure_row(engine: Engine, name: str) -> None:
    if _row_exists(engine, name):
        return
    try:
        with engine.begin() as connection:
            connection.execute(insert(Lease).values(name=name, holder=None, expires_at=None))
    except IntegrityError:
        pass  # another process created it first: exactly what we wanted


def _row_exists(engine: Engine, name: str) -> bool:
    with engine.connect() as connection:
        return connection.scalar(select(Lease.name).where(Lease.name == name)) is not None
