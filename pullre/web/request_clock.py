"""The clock the web views read: the system's, unless a test put a fake one on the app.

Idle sleep and expiry count from what pages and API calls record, so tests of those pages must
be able to say what time it is; a key on ``app.extensions`` does that without changing
``create_app``.
"""

from __future__ import annotations

from datetime import datetime

from flask import current_app

from pullre.clock import Clock, system_clock

CLOCK_KEY = "pullre.clock"


def clock() -> Clock:
    found: Clock = current_app.extensions.get(CLOCK_KEY, system_clock)
    return found


def now() -> datetime:
    return clock()()
