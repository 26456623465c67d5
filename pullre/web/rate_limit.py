"""A token bucket per staging server, in this process: how often one agent may call the API.

A box runs PR code that may find the agent's tokens, so its calls are bounded like its stored
steps (``pullre.environments.step_retention``). The buckets live in memory, per replica: a
bucket in the controller DB would cost a write on every call (on SQLite, behind the one write
lock) to protect against too many writes. With several replicas an agent may make up to that
many times the rate; storage stays bounded by the step retention whatever the rate.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

#: Calls a server may make in a burst, and per second on average after it. A pass makes one
#: assignment call, up to ~16 step reports and a heartbeat; ``--loop`` runs one a minute.
BURST = 120
PER_SECOND = 1.0


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class RateLimiter:
    burst: int = BURST
    per_second: float = PER_SECOND
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[int, _Bucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, key: int) -> float:
        """Spend one call for ``key``; 0 when allowed, else the seconds until one is."""
        now = self.clock()
        with self._lock:
            bucket = self._buckets.setdefault(key, _Bucket(float(self.burst), now))
            bucket.tokens = min(
                float(self.burst), bucket.tokens + (now - bucket.at) * self.per_second
            )
            bucket.at = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.per_second


def retry_after(seconds: float) -> str:
    """``Retry-After`` in whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
