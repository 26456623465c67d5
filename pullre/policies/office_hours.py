"""Office hours as time math: is a schedule open at an instant, and when does that change.

A schedule is wall-clock times in a named IANA zone, so "09:00" means 09:00 in Berlin in winter
and in summer alike; the UTC instant it names moves with daylight saving. Every question here is
answered by resolving each opening day's wall-clock window to a pair of UTC instants, so that
:func:`is_open` and :func:`next_change` always agree — the reconcile pass acts on the edges one
finds and checks them with the other.

Resolving a wall-clock time that a daylight-saving change makes odd:

* **does not exist** (spring forward, e.g. 02:30 in Europe/Berlin on 2026-03-29): it means the
  instant the gap ends, the first moment the wall clock shows a time at or after it (03:00
  CEST). A window that opens in the gap opens when the clocks jump; one that closes in it closes
  then; a window lying wholly inside the gap is empty that day.
* **happens twice** (fall back, e.g. 02:30 in Europe/Berlin on 2026-10-25): it means the first
  occurrence (``fold=0``, still summer time). A window opening at 02:30 opens once and stays open
  through the repeated hour instead of closing and reopening; one closing at 02:30 closes at the
  first 02:30 (the cheaper reading).

Pure functions over :class:`~pullre.models.Schedule`; nothing here touches the database.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pullre.models import Schedule

#: The values ``Repository.schedule_state`` and ``Server.schedule_state`` hold.
OPEN = "open"
CLOSED = "closed"

#: Between the ends of a range of days or hours, as typeset text has it.
DASH = "\N{EN DASH}"

#: ISO weekday (1 Monday … 7 Sunday) to its short English name, as forms and pages show them.
DAY_NAMES = {1: "Mon", 2: "Tue", 3: "Wed", 4: "Thu", 5: "Fri", 6: "Sat", 7: "Sun"}

# Windows open on at most one day a week apart, so from two days back (a window that opened
# yesterday may still be open, even after a shift at midnight) to eight ahead holds the next
# opening and the next closing whenever either exists. Edges are only trusted before the last
# day of the range begins: a later one may be covered by a window opening after the range.
_LOOK_BACK_DAYS = 2
_LOOK_AHEAD_DAYS = 9


@functools.cache
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def time_zone_error(name: str) -> str | None:
    """Why ``name`` is not a time zone a schedule can use, or None when it is.

    Forms show the answer as it is, so an unknown or misspelt zone is a clear error before it is
    stored rather than an exception in a later reconcile pass.
    """
    if not name or name != name.strip():
        return "Give an IANA time zone name such as Europe/Berlin, America/New_York or UTC."
    if name not in _known_zones():
        return (
            f"Unknown time zone {name!r}: give an IANA name such as Europe/Berlin, "
            "America/New_York or UTC (the spelling and capitals matter)."
        )
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):  # pragma: no cover - listed but unreadable
        return f"Time zone {name!r} is listed but its data cannot be read on this machine."
    return None


def known_time_zones() -> list[str]:
    """Every zone name :func:`time_zone_error` accepts, sorted, for a form's suggestions."""
    return sorted(_known_zones())


def zone(schedule: Schedule) -> ZoneInfo:
    return ZoneInfo(schedule.time_zone)


def _resolve(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The UTC instant a wall-clock time on a day names, by the rules in the module docstring."""
    first = datetime.combine(day, at, tzinfo=tz)  # fold=0: the first occurrence when twice
    instant = first.astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) == first.replace(tzinfo=None):
        return instant
    # In a gap, fold=0 reads the wall time with the offset from before the jump (an instant
    # after the gap ended) and fold=1 with the offset after it (an instant before the gap
    # began); the end of the gap is the offset change between them, found to the second.
    after_offset = instant.astimezone(tz).utcoffset()
    low = int(first.replace(fold=1).astimezone(UTC).timestamp())
    high = int(instant.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, tz).utcoffset() == after_offset:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def _windows(
    schedule: Schedule, first_day: date, last_day: date
) -> Iterator[tuple[datetime, datetime]]:
    """The [opens, closes) UTC windows of the schedule that open on days in the range."""
    tz = zone(schedule)
    days = set(schedule.days)
    overnight = schedule.closes_at <= schedule.opens_at
    day = first_day
    while day <= last_day:
        if day.isoweekday() in days:
            opens = _resolve(day, schedule.opens_at, tz)
            closes = _resolve(day + timedelta(days=1) if overnight else day, schedule.closes_at, tz)
            if opens < closes:
                yield opens, closes
        day += timedelta(days=1)


def _require_aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("naive datetime given; office hours take aware instants")
    return moment.astimezone(UTC)


def _nearby_windows(schedule: Schedule, moment: datetime) -> list[tuple[datetime, datetime]]:
    today = moment.astimezone(zone(schedule)).date()
    return list(
        _windows(
            schedule,
            today - timedelta(days=_LOOK_BACK_DAYS),
            today + timedelta(days=_LOOK_AHEAD_DAYS),
        )
    )


def _horizon(schedule: Schedule, moment: datetime) -> datetime:
    """The start of the last day :func:`_nearby_windows` covers: edges from here on are unsure."""
    today = moment.astimezone(zone(schedule)).date()
    return _resolve(today + timedelta(days=_LOOK_AHEAD_DAYS), time(0, 0), zone(schedule))


def _inside(windows: list[tuple[datetime, datetime]], moment: datetime) -> bool:
    return any(opens <= moment < closes for opens, closes in windows)


def is_open(schedule: Schedule, moment: datetime) -> bool:
    """Whether machines on this schedule should be running at ``moment`` (an aware instant).

    A window is open from its opening instant (included) to its closing instant (excluded).
    """
    moment = _require_aware(moment)
    return _inside(_nearby_windows(schedule, moment), moment)


def side(schedule: Schedule, moment: datetime) -> str:
    """:data:`OPEN` or :data:`CLOSED`: the value a ``schedule_state`` column compares against."""
    return OPEN if is_open(schedule, moment) else CLOSED


def next_change(schedule: Schedule, moment: datetime) -> datetime | None:
    """The first instant after ``moment`` at which :func:`is_open` flips, in UTC.

    None when it never flips: a schedule without days (always closed) or one open round the
    clock every day. Windows that meet (Mon 09:00 → Tue 09:00 and Tue 09:00 → …) count as one.
    """
    moment = _require_aware(moment)
    windows = _nearby_windows(schedule, moment)
    now_open = _inside(windows, moment)
    horizon = _horizon(schedule, moment)
    edges = sorted({edge for window in windows for edge in window if moment < edge < horizon})
    for edge in edges:
        if _inside(windows, edge) != now_open:
            return edge
    return None


def in_zone(schedule: Schedule, instant: datetime) -> datetime:
    """The instant as the schedule's wall clock shows it, for pages that state the zone."""
    return _require_aware(instant).astimezone(zone(schedule))


def format_in_zone(schedule: Schedule, instant: datetime) -> str:
    """E.g. "Mon 2026-03-30 09:00 CEST (Europe/Berlin)": a time with its zone said out loud."""
    local = in_zone(schedule, instant)
    return (
        f"{DAY_NAMES[local.isoweekday()]} {local:%Y-%m-%d %H:%M} {local.tzname()} "
        f"({schedule.time_zone})"
    )


def _describe_days(days: list[int]) -> str:
    chosen = sorted(set(days))
    if chosen == list(range(1, 8)):
        return "every day"
    runs: list[list[int]] = []
    for day in chosen:
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    parts: list[str] = []
    for run in runs:
        if len(run) >= 3:
            parts.append(f"{DAY_NAMES[run[0]]}{DASH}{DAY_NAMES[run[-1]]}")
        else:
            parts.extend(DAY_NAMES[day] for day in run)
    return ", ".join(parts)


def describe(schedule: Schedule) -> str:
    """One line a person reads, e.g. "Mon-Fri 09:00-18:00 (Europe/Berlin)" with en dashes."""
    if not schedule.days:
        return f"never open (no days chosen) ({schedule.time_zone})"
    hours = f"{schedule.opens_at:%H:%M}{DASH}{schedule.closes_at:%H:%M}"
    if schedule.closes_at <= schedule.opens_at:
        hours += " next day"
    return f"{_describe_days(schedule.days)} {hours} ({schedule.time_zone})"
