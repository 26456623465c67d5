"""What the busiest pages read, computed once per change of the DB rather than once per request.

Every open dashboard tab asks for its table every few seconds, and scripts poll the API's PR list;
with a few people and a wall screen, most of those requests read exactly what the previous one
read. A page's data is kept under the DB's data version (:mod:`pullre.data_version`), so it is
never older than the last commit (what depends on the clock is keyed on its second too, or
computed as the page is drawn), and one request computes it while the others asking for the same
key wait for its answer instead of all computing it at once. Summaries of days and months are
kept a minute instead, whatever commits meanwhile.

Kept values are shared between requests and threads: callers cache only immutable data that
does not depend on who asks (no ORM objects, no CSRF tokens, no user names), and never mutate what
they get back. Where the DB gives no version (MySQL, the tests' rolled-back connection), every
call computes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from datetime import datetime
from typing import Any, TypeVar, cast

import cachetools
from flask import Flask, current_app
from sqlalchemy import Connection, Engine

from pullre.data_version import DataVersion

_KEY = "pullre.page_cache"
#: Keys kept at once: a page per filter and page number in use, of the latest version.
MAX_ENTRIES = 64
#: How long a summary (see :meth:`PageCache.summary`) is kept.
SUMMARY_SECONDS = 60.0
_Value = TypeVar("_Value")


class PageCache:
    def __init__(
        self,
        version: DataVersion,
        max_entries: int = MAX_ENTRIES,
        summary_seconds: float = SUMMARY_SECONDS,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._version = version
        self._exact = _single_flight(cachetools.LRUCache(maxsize=max_entries))
        self._summaries = _single_flight(
            cachetools.TTLCache(maxsize=max_entries, ttl=summary_seconds, timer=timer)
        )

    def get(
        self, key: Hashable, compute: Callable[[], _Value], *, now: datetime | None = None
    ) -> _Value:
        """``compute()``'s value for ``key`` as of the DB's current version (and, when its value
        depends on the clock, as of ``now``'s second)."""
        version = self._version.current()
        if version is None:
            return compute()
        second = now.replace(microsecond=0) if now is not None else None
        return cast(_Value, self._exact((version, second, key), compute))

    def summary(self, key: Hashable, compute: Callable[[], _Value]) -> _Value:
        """``compute()``'s value for ``key``, recomputed at most every ``summary_seconds``: for
        summaries of days and months (a week's chart, a month's cost), where a minute's lag is
        invisible and a recompute on every commit would be most of the page's cost."""
        if not self._version.available:
            return compute()
        return cast(_Value, self._summaries(key, compute))

    def close(self) -> None:
        self._version.close()


def _single_flight(
    cache: cachetools.Cache[Hashable, Any],
) -> Callable[[Hashable, Callable[[], Any]], Any]:
    """``cache`` in front of ``compute()``; cachetools' condition makes concurrent misses of one
    key wait for a single compute."""
    return cachetools.cached(cache, key=lambda key, _compute: key, condition=threading.Condition())(
        lambda _key, compute: compute()
    )


def init_app(app: Flask, bind: Engine | Connection | None) -> None:
    app.extensions[_KEY] = PageCache(DataVersion.of(bind))


def page_cache() -> PageCache:
    """The current app's cache."""
    cache: PageCache = current_app.extensions[_KEY]
    return cache
