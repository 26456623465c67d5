"""Pool use over the last days, from the samples every reconcile pass leaves in ``pass_runs``.

Passes may run every few seconds, so samples are bucketed per hour in SQL (the hour as text,
spelled per dialect) rather than fetched one by one. The chart is plain SVG geometry computed
here and drawn by the template: the CSP forbids scripts from elsewhere and inline styles, and a
picture this simple needs neither.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from pullre.models import PassRun

HOUR = timedelta(hours=1)
DAYS = 7
#: Pixels per hour and the plot's height; the SVG scales to its box through its viewBox.
SLOT = 4
PLOT_HEIGHT = 100
LABEL_HEIGHT = 16
_HOUR_TEXT = "%Y-%m-%d %H"


@dataclass(frozen=True)
class HourSample:
    hour: datetime
    busy: int
    pool: int
    queued: int


@dataclass(frozen=True)
class Bar:
    x: int
    busy_y: float
    busy_height: float
    queued_y: float
    queued_height: float
    title: str


@dataclass(frozen=True)
class DayTick:
    x: int
    label: str


@dataclass(frozen=True)
class UsageChart:
    width: int
    height: int
    plot_height: int
    bars: list[Bar]
    pool_path: str
    ticks: list[DayTick]
    peak_busy: int
    peak_queued: int
    pool_size: int

    @property
    def empty(self) -> bool:
        return not self.bars


def _hour_text(dialect: str) -> ColumnElement[str] | None:
    if dialect == "sqlite":
        return func.strftime(_HOUR_TEXT, PassRun.started_at)
    if dialect in {"mysql", "mariadb"}:
        return func.date_format(PassRun.started_at, _HOUR_TEXT)
    return None


def hourly_usage(session: Session, now: datetime, days: int = DAYS) -> list[HourSample]:
    """Per hour of the window: the most servers busy, the pool's size and the longest queue."""
    since = _window_start(now, days)
    recent = PassRun.started_at >= since
    hour = _hour_text(session.get_bind().dialect.name)
    if hour is None:  # another database: bucket in Python, slower but right
        rows = session.execute(
            select(
                PassRun.started_at, PassRun.busy_servers, PassRun.pool_size, PassRun.queued
            ).where(recent)
        )
        return _bucket(
            (at.replace(minute=0, second=0, microsecond=0), busy, pool, queued)
            for at, busy, pool, queued in rows
        )
    grouped = session.execute(
        select(
            hour,
            func.max(PassRun.busy_servers),
            func.max(PassRun.pool_size),
            func.max(PassRun.queued),
        )
        .where(recent)
        .group_by(hour)
        .order_by(hour)
    )
    return _bucket(
        (datetime.strptime(text, _HOUR_TEXT).replace(tzinfo=UTC), busy, pool, queued)
        for text, busy, pool, queued in grouped
    )


def _bucket(rows: Iterable[tuple[datetime, int, int, int]]) -> list[HourSample]:
    samples: dict[datetime, HourSample] = {}
    for hour, busy, pool, queued in rows:
        seen = samples.get(hour, HourSample(hour=hour, busy=0, pool=0, queued=0))
        samples[hour] = HourSample(
            hour=hour,
            busy=max(busy, seen.busy),
            pool=max(pool, seen.pool),
            queued=max(queued, seen.queued),
        )
    return sorted(samples.values(), key=lambda s: s.hour)


def _window_start(now: datetime, days: int) -> datetime:
    """The first hour drawn: the window ends with the hour now is in."""
    current = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return current + HOUR - timedelta(days=days)


def usage_chart(samples: list[HourSample], now: datetime, days: int = DAYS) -> UsageChart:
    """Busy servers as bars, the queue stacked on them, the pool's size as a stepped line."""
    start = _window_start(now, days)
    slots = days * 24
    top = max([1, *(max(s.pool, s.busy + s.queued) for s in samples)])
    scale = (PLOT_HEIGHT - 4) / top

    def y(value: int) -> float:
        return round(PLOT_HEIGHT - value * scale, 1)

    bars: list[Bar] = []
    path: list[str] = []
    previous = -2
    for sample in samples:
        slot = int((sample.hour - start) / HOUR)
        if not 0 <= slot < slots:
            continue
        x = slot * SLOT
        busy_y, queued_y = y(sample.busy), y(sample.busy + sample.queued)
        bars.append(
            Bar(
                x=x,
                busy_y=busy_y,
                busy_height=round(PLOT_HEIGHT - busy_y, 1),
                queued_y=queued_y,
                queued_height=round(busy_y - queued_y, 1),
                title=f"{sample.hour:%a %d %b %H:00} UTC: {sample.busy} of {sample.pool} "
                f"servers busy, {sample.queued} queued",
            )
        )
        path.append(f"{'V' if slot == previous + 1 else 'M' + str(x)} {y(sample.pool)} H{x + SLOT}")
        previous = slot
    ticks = []
    for day in range(days + 1):
        midnight = start.replace(hour=0) + timedelta(days=day)
        slot = int((midnight - start) / HOUR)
        if 0 <= slot < slots:
            ticks.append(DayTick(x=slot * SLOT, label=f"{midnight:%a %d}"))
    return UsageChart(
        width=slots * SLOT,
        height=PLOT_HEIGHT + LABEL_HEIGHT,
        plot_height=PLOT_HEIGHT,
        bars=bars,
        pool_path=" ".join(path),
        ticks=ticks,
        peak_busy=max((s.busy for s in samples), default=0),
        peak_queued=max((s.queued for s in samples), default=0),
        pool_size=samples[-1].pool if samples else 0,
    )
