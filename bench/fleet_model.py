"""A month of pull-request activity, drawn from a seeded model with office-hours peaks.

Everything is drawn from one ``random.Random(seed)``, so a seed names one month exactly and
both runs of the benchmark replay the same month. Times are wall-clock in one named time zone
(Europe/Amsterdam by default, whose spring daylight-saving change falls in the default month)
and turned into UTC for the controller.

The model (the numbers are the defaults; ``Model`` holds them):

* **Opens** arrive as a Poisson process per local hour. On weekdays the rate follows
  ``HOURLY_WEIGHT`` (nothing at night, a rise from 08:00, peaks 10-11 and 14-16, a dip at
  lunch, a tail after 18:00), scaled so a Monday sees ``prs_per_day`` opens on average; the
  other days take ``DAY_WEIGHT`` of that (Friday 0.8, Saturday 0.08, Sunday 0.05).
* **Repository and author**: uniform over ``repositories`` repositories and 12 authors.
* **Lifetime** (open to merge): log-normal with median ``lifetime_median_hours`` (20 h) and
  sigma 1.1 (so about one PR in ten stays open more than three days), at least 30 minutes;
  the merge itself is done by a person, so it moves to working time (below) when it falls
  outside.
* **Pushes** after the opening commit: Poisson with mean ``pushes_per_pr`` (2.5), at uniform
  moments of the lifetime moved to working time; dropped when that is past the merge.
* **Review visits** (someone opens the staging URL): Poisson with mean ``visits_per_pr`` (3)
  at uniform moments of the lifetime, plus one visit 15-90 minutes after each push with
  probability ``visit_after_push`` (0.6); all moved to working time, dropped past the merge.

*Working time* is Monday to Friday 08:00-19:00 local; a moment outside it moves to the next
opening plus a uniform 0-2 h, so the morning sees the night's backlog. The office-hours
schedule the benchmark gives the repositories when policies are on is that same window.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum
from zoneinfo import ZoneInfo

#: Relative weekday rate of PR opens per local hour (index = hour of day).
HOURLY_WEIGHT = (
    0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.03, 0.10,  # 00-07
    0.50, 1.00, 1.40, 1.30, 0.60, 1.00, 1.30, 1.30,  # 08-15
    1.10, 0.70, 0.30, 0.15, 0.05, 0.05, 0.05, 0.02,  # 16-23
)  # fmt: skip
#: Relative daily volume, Monday (1) to Sunday (7).
DAY_WEIGHT = {1: 1.0, 2: 1.1, 3: 1.1, 4: 1.0, 5: 0.8, 6: 0.08, 7: 0.05}
#: The working window people merge, push and review in (and the benchmark's office hours).
WORK_DAYS = (1, 2, 3, 4, 5)
WORK_OPENS = time(8, 0)
WORK_CLOSES = time(19, 0)
AUTHORS = 12
LIFETIME_SIGMA = 1.1
MIN_LIFETIME = timedelta(minutes=30)
MORNING_SPREAD = timedelta(hours=2)


class Kind(Enum):
    OPEN = "open"
    PUSH = "push"
    VISIT = "visit"
    MERGE = "merge"


@dataclass(frozen=True)
class Activity:
    """One thing that happens to a PR, at one moment (UTC)."""

    at: datetime
    repository: int
    number: int
    kind: Kind
    author: str = ""


@dataclass(frozen=True)
class Model:
    start: date = date(2026, 3, 2)
    days: int = 30
    time_zone: str = "Europe/Amsterdam"
    repositories: int = 3
    prs_per_day: float = 14.0
    lifetime_median_hours: float = 20.0
    pushes_per_pr: float = 2.5
    visits_per_pr: float = 3.0
    visit_after_push: float = 0.6
    seed: int = 7

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def begins(self) -> datetime:
        return datetime.combine(self.start, time(0), self.zone).astimezone(UTC)

    @property
    def ends(self) -> datetime:
        last = self.start + timedelta(days=self.days)
        return datetime.combine(last, time(0), self.zone).astimezone(UTC)


def generate(model: Model) -> list[Activity]:
    """Every open, push, visit and merge of the month, in time order (UTC)."""
    rng = random.Random(model.seed)
    zone = model.zone
    per_unit = model.prs_per_day / sum(HOURLY_WEIGHT)
    numbers = [0] * model.repositories
    activities: list[Activity] = []
    for day in range(model.days):
        today = model.start + timedelta(days=day)
        for hour, weight in enumerate(HOURLY_WEIGHT):
            local = datetime.combine(today, time(hour), zone)
            rate = per_unit * weight * DAY_WEIGHT[today.isoweekday()]
            for _ in range(_poisson(rng, rate)):
                opened = (local + timedelta(seconds=rng.uniform(0, 3600))).astimezone(UTC)
                repository = rng.randrange(model.repositories)
                numbers[repository] += 1
                author = f"dev{rng.randrange(AUTHORS)}"
                activities += _pull(rng, model, opened, repository, numbers[repository], author)
    # Ties (rare) broken by PR and by kind in lifecycle order, so a replay is deterministic.
    order = list(Kind)
    activities.sort(key=lambda a: (a.at, a.repository, a.number, order.index(a.kind)))
    return [a for a in activities if a.at < model.ends]


def _pull(
    rng: random.Random, model: Model, opened: datetime, repository: int, number: int, author: str
) -> list[Activity]:
    zone = model.zone
    hours = model.lifetime_median_hours * math.exp(rng.gauss(0, LIFETIME_SIGMA))
    merged = to_working_time(opened + max(timedelta(hours=hours), MIN_LIFETIME), zone, rng)
    life = (merged - opened).total_seconds()

    def moment(after: datetime, seconds: float) -> datetime:
        return to_working_time(after + timedelta(seconds=seconds), zone, rng)

    pushes = [
        moment(opened, rng.uniform(0, life)) for _ in range(_poisson(rng, model.pushes_per_pr))
    ]
    visits = [
        moment(opened, rng.uniform(0, life)) for _ in range(_poisson(rng, model.visits_per_pr))
    ]
    visits += [
        moment(push, rng.uniform(15 * 60, 90 * 60))
        for push in pushes
        if rng.random() < model.visit_after_push
    ]
    at = [(opened, Kind.OPEN), (merged, Kind.MERGE)]
    at += [(t, Kind.PUSH) for t in pushes] + [(t, Kind.VISIT) for t in visits]
    return [
        Activity(t, repository, number, kind, author)
        for t, kind in at
        if kind in {Kind.OPEN, Kind.MERGE} or opened < t < merged
    ]


def is_working_time(moment: datetime, zone: ZoneInfo) -> bool:
    local = moment.astimezone(zone)
    return local.isoweekday() in WORK_DAYS and WORK_OPENS <= local.time() < WORK_CLOSES


def working_time(start: datetime, end: datetime, zone: ZoneInfo) -> timedelta:
    """How much of ``start``..``end`` falls in working time (a wait nobody was there for is not
    a wait anyone felt)."""
    total = timedelta(0)
    day = start.astimezone(zone).date()
    while day <= end.astimezone(zone).date():
        if day.isoweekday() in WORK_DAYS:
            opens = datetime.combine(day, WORK_OPENS, zone).astimezone(UTC)
            closes = datetime.combine(day, WORK_CLOSES, zone).astimezone(UTC)
            total += max(timedelta(0), min(end, closes) - max(start, opens))
        day += timedelta(days=1)
    return total


def to_working_time(moment: datetime, zone: ZoneInfo, rng: random.Random) -> datetime:
    """``moment`` if people work then, else the next opening plus a little morning spread."""
    if is_working_time(moment, zone):
        return moment
    local = moment.astimezone(zone)
    day = local.date() if local.time() < WORK_OPENS else local.date() + timedelta(days=1)
    while day.isoweekday() not in WORK_DAYS:
        day += timedelta(days=1)
    opening = datetime.combine(day, WORK_OPENS, zone).astimezone(UTC)
    return opening + timedelta(seconds=rng.uniform(0, MORNING_SPREAD.total_seconds()))


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method; the means here are small."""
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count
