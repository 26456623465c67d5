"""What every step of a reconcile pass shares: its sessions, clock, lease and report.

Steps record a problem through ``PassContext.error`` (log, report, audit event, commit), so a
failure is visible in the same three places whichever step met it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from pullre import events
from pullre.clock import Clock

log = logging.getLogger("pullre.reconcile.run")


@dataclass
class PassReport:
    """What one pass did, for the log line, the exit status and the tests."""

    skipped: bool = False
    lease_holder: str | None = None
    repositories: int = 0
    unchanged: int = 0
    assigned: list[tuple[int, str]] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    released: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: Servers given back whose instance has not stopped yet: a later pass frees them.
    settling: int = 0


@dataclass
class PassContext:
    sessions: sessionmaker[Session]
    clock: Clock
    #: Extends the pass's lease; raises LeaseLost when another pass took it over.
    renew: Callable[[], None]
    report: PassReport = field(default_factory=PassReport)

    def error(self, session: Session, message: str, **where: object) -> None:
        log.warning("%s", message)
        self.report.errors.append(message)
        events.record(session, "error", message, **where)  # type: ignore[arg-type]
        session.commit()
