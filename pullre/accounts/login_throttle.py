"""Slowing down password guessing: failed logins counted per account and per address.

The counts live in the controller DB (not in process memory), so replicas behind one load
balancer share them and a restart does not forgive a guesser. A few failures are free (people
mistype); after that each failure locks the key for twice as long as the one before, up to
``MAX_LOCK``. While a key is locked the password is not even checked, so guessing stops rather
than merely slows. Failures older than ``WINDOW`` are forgotten.

Addresses get a larger allowance than accounts: many people can sit behind one office NAT.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pullre.models import LoginThrottle

WINDOW = timedelta(minutes=15)
MAX_LOCK = timedelta(minutes=15)
FREE_ACCOUNT_FAILURES = 5
FREE_ADDRESS_FAILURES = 20
_KEY_LENGTH = 150


@dataclass(frozen=True)
class Keys:
    """The two counters one login attempt touches."""

    account: str
    address: str

    @classmethod
    def of(cls, username: str, address: str | None) -> Keys:
        return cls(
            account=f"user:{username.strip()}"[:_KEY_LENGTH],
            address=f"address:{address or 'unknown'}"[:_KEY_LENGTH],
        )

    def allowances(self) -> tuple[tuple[str, int], tuple[str, int]]:
        return (self.account, FREE_ACCOUNT_FAILURES), (self.address, FREE_ADDRESS_FAILURES)


def lock_for(failures: int, free: int) -> timedelta:
    """How long a key stays locked after its ``failures``-th failure in the window."""
    if failures <= free:
        return timedelta(0)
    return min(timedelta(seconds=2 ** min(failures - free - 1, 20)), MAX_LOCK)


def seconds_locked(session: Session, keys: Keys, now: datetime) -> int:
    """Whole seconds until both keys allow a try again; 0 when a try is allowed now."""
    until = session.scalars(
        select(LoginThrottle.locked_until).where(
            LoginThrottle.subject.in_((keys.account, keys.address)),
            LoginThrottle.locked_until > now,
        )
    ).all()
    latest = max((found for found in until if found is not None), default=None)
    return 0 if latest is None else max(1, math.ceil((latest - now).total_seconds()))


def record_failure(session: Session, keys: Keys, now: datetime) -> int:
    """Count a failure on both keys; the seconds the attempt's keys are now locked for.

    The increment is one UPDATE, so two replicas counting at once both count.
    """
    _forget_stale(session, now)
    locked = timedelta(0)
    for key, free in keys.allowances():
        failures = _increment(session, key, now)
        lock = lock_for(failures, free)
        if lock:
            session.execute(
                update(LoginThrottle)
                .where(LoginThrottle.subject == key)
                .values(locked_until=now + lock)
                .execution_options(synchronize_session=False)
            )
        locked = max(locked, lock)
    return math.ceil(locked.total_seconds())


def forget_account(session: Session, keys: Keys) -> None:
    """A successful login clears its account's count (not the address's: one good account
    must not reset a guesser's budget for all the others)."""
    session.execute(
        delete(LoginThrottle)
        .where(LoginThrottle.subject == keys.account)
        .execution_options(synchronize_session=False)
    )


def _forget_stale(session: Session, now: datetime) -> None:
    """Drop counts that can no longer lock anything, so names a guesser makes up do not pile up."""
    session.execute(
        delete(LoginThrottle)
        .where(LoginThrottle.last_failure_at < now - WINDOW - MAX_LOCK)
        .execution_options(synchronize_session=False)
    )


def _increment(session: Session, key: str, now: datetime) -> int:
    statement = (
        update(LoginThrottle)
        .where(LoginThrottle.subject == key)
        .values(
            failures=case(
                (LoginThrottle.last_failure_at < now - WINDOW, 1),
                else_=LoginThrottle.failures + 1,
            ),
            last_failure_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if session.execute(statement).rowcount == 0:  # type: ignore[attr-defined]
        try:
            with session.begin_nested():
                session.add(LoginThrottle(subject=key, failures=1, last_failure_at=now))
        except IntegrityError:  # another replica inserted it first: count on its row
            session.execute(statement)
    failures = session.scalar(select(LoginThrottle.failures).where(LoginThrottle.subject == key))
    return failures or 1
