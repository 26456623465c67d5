"""The clock as a port: policies that depend on time are tested by moving a fake clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from pullre.models import utcnow

#: Returns the current time, aware and in UTC.
Clock = Callable[[], datetime]

system_clock: Clock = utcnow
