"""The one fake clock of the tests: the test sets or moves it, the code under test reads it.

Pass it wherever pullre takes a ``clock`` (a callable returning an aware datetime): reconcile
passes, actions, agent reports, token checks, or the web app's request clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta


class MovingClock:
    """A clock the test moves: everything that reads it sees the same time."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        """Move on by ``timedelta(**delta)``; returns the new time."""
        self.now += timedelta(**delta)
        return self.now

    def at(self, delta: timedelta) -> MovingClock:
        """Set to ``delta`` after the start; returns the clock, to pass on in the same call."""
        self.now = self.start + delta
        return self
