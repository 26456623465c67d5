"""What the pool costs: running time recorded from observed EC2 states, priced per server.

EC2 bills a stopped instance nothing for compute, so only time seen ``running`` counts. A pass
that sees a server running opens a span for whoever holds it then; the first pass that sees it
otherwise (or held by someone else) closes it. Costs are therefore exact to the pass interval,
and a crashed controller loses nothing: the open span is closed by the next pass that looks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from itertools import pairwise

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from pullre.ec2.port import InstanceInfo
from pullre.models import Environment, PullRequest, Repository, RunningSpan, Server

_HOUR = Decimal(3600)
#: What the monthly chart calls running time no PR asked for (orphans, servers between PRs).
UNATTRIBUTED = "(no PR)"


def hourly_price(server: Server, prices: Mapping[str, Decimal]) -> Decimal | None:
    """The server's own price, else its instance type's from ``[cost] instance_prices``."""
    if server.hourly_price is not None:
        return server.hourly_price
    return prices.get(server.instance_type or "")


def record_running(
    session: Session,
    servers: Sequence[Server],
    seen: Mapping[str, InstanceInfo],
    held: Mapping[int, Environment],
    *,
    now: datetime,
    prices: Mapping[str, Decimal],
) -> None:
    """Open and close running spans to match what this pass saw of each server."""
    ids = [server.id for server in servers]
    open_spans = {
        span.server_id: span
        for span in session.scalars(
            select(RunningSpan).where(
                RunningSpan.ended_at.is_(None), RunningSpan.server_id.in_(ids)
            )
        )
    }
    for server in servers:
        info = seen.get(server.instance_id)
        if info is not None and info.instance_type:
            server.instance_type = info.instance_type
        running = info is not None and info.state == "running"
        holder = held.get(server.id)
        environment_id = holder.id if holder is not None else None
        span = open_spans.get(server.id)
        if span is not None and (not running or span.environment_id != environment_id):
            span.ended_at = now
            span = None
        if running and span is None:
            session.add(
                RunningSpan(
                    server_id=server.id,
                    environment_id=environment_id,
                    started_at=now,
                    hourly_price=hourly_price(server, prices),
                )
            )


@dataclass(frozen=True)
class Cost:
    """Running time and its price. ``unpriced_hours`` ran on servers with no known price."""

    hours: Decimal = Decimal(0)
    amount: Decimal = Decimal(0)
    unpriced_hours: Decimal = Decimal(0)
    #: Start of the run still going on, when ``until`` left it out (see ``environment_costs``).
    running_since: datetime | None = None

    def __add__(self, other: Cost) -> Cost:
        starts = [s for s in (self.running_since, other.running_since) if s is not None]
        return Cost(
            hours=self.hours + other.hours,
            amount=self.amount + other.amount,
            unpriced_hours=self.unpriced_hours + other.unpriced_hours,
            running_since=min(starts, default=None),
        )


def span_cost(span: RunningSpan, start: datetime, end: datetime) -> Cost:
    """The part of a span between ``start`` and ``end``, at the price copied into it."""
    hours = Decimal((end - start).total_seconds()) / _HOUR
    if hours <= 0:
        return Cost()
    if span.hourly_price is None:
        return Cost(hours=hours, unpriced_hours=hours)
    return Cost(hours=hours, amount=hours * span.hourly_price)


def environment_costs(
    session: Session, environment_ids: Collection[int], *, until: datetime | None
) -> dict[int, Cost]:
    """Cost per environment; a running span counts up to ``until``.

    With ``until`` None only finished spans count, and a running one is given as
    ``running_since``: what the PR comment shows, so it changes when a run ends rather than
    on every pass (each change is a paced GitHub write).
    """
    costs: dict[int, Cost] = defaultdict(Cost)
    if not environment_ids:
        return {}
    for span in session.scalars(
        select(RunningSpan).where(RunningSpan.environment_id.in_(list(environment_ids)))
    ):
        assert span.environment_id is not None
        costs[span.environment_id] += _up_to(span, until)
    return dict(costs)


def _up_to(span: RunningSpan, until: datetime | None) -> Cost:
    """A finished span's cost; a running one's up to ``until``, or, without it, its start."""
    end = span.ended_at or until
    if end is None:
        return Cost(running_since=span.started_at)
    return span_cost(span, span.started_at, end)


@dataclass(frozen=True)
class Costs:
    by_environment: dict[int, Cost]
    by_pull: dict[int, Cost]


def pull_costs(session: Session, pull_ids: Collection[int], *, until: datetime | None) -> Costs:
    """Cost per stay and per PR (all its stays) for many PRs in one query, for pages and the API.

    Unlike ``environment_costs``, a run still going on is always given as ``running_since``,
    also when it is counted up to ``until``: a page says "running now" beside the amount.
    """
    by_environment: dict[int, Cost] = defaultdict(Cost)
    by_pull: dict[int, Cost] = defaultdict(Cost)
    if not pull_ids:
        return Costs({}, {})
    rows = session.execute(
        select(RunningSpan, Environment.pull_request_id)
        .join(Environment, Environment.id == RunningSpan.environment_id)
        .where(Environment.pull_request_id.in_(list(pull_ids)))
    )
    for span, pull_id in rows:
        assert span.environment_id is not None
        stretch = _up_to(span, until)
        if span.ended_at is None:
            stretch += Cost(running_since=span.started_at)
        by_environment[span.environment_id] += stretch
        by_pull[pull_id] += stretch
    return Costs(dict(by_environment), dict(by_pull))


def pull_cost(session: Session, pull: PullRequest, *, until: datetime | None) -> Cost:
    """Every stay of the PR on the pool, added up."""
    return pull_costs(session, [pull.id], until=until).by_pull.get(pull.id, Cost())


_CENT = Decimal("0.01")
_SMALL = Decimal("0.0001")


def money(amount: Decimal) -> str:
    """Cents, unless a real amount would show as 0.00 (cheap instances, short runs)."""
    if Decimal(0) < amount < _CENT:
        return str(amount.quantize(_SMALL, rounding=ROUND_HALF_UP))
    return str(amount.quantize(_CENT, rounding=ROUND_HALF_UP))


def hours(value: Decimal) -> str:
    """Tenths of an hour; minutes under an hour, where tenths would say a short run was 0.0 h."""
    if Decimal(0) < value < 1:
        minutes = (value * 60).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        return f"{minutes} min" if minutes else "under a minute"
    return f"{value.quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)} h"


def month_start(moment: datetime, back: int = 0) -> datetime:
    """The first instant (UTC) of ``moment``'s month, or of the month ``back`` months before."""
    index = moment.year * 12 + moment.month - 1 - back
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class MonthlyCost:
    month: datetime
    repository: str
    cost: Cost


def monthly_by_repository(session: Session, *, months: int, now: datetime) -> list[MonthlyCost]:
    """Cost per repository per calendar month (UTC), the last ``months`` months up to now."""
    starts = [month_start(now, back) for back in range(months - 1, -1, -1)]
    window_start = starts[0]
    rows = session.execute(
        select(RunningSpan, Repository.owner, Repository.name)
        .outerjoin(Environment, Environment.id == RunningSpan.environment_id)
        .outerjoin(PullRequest, PullRequest.id == Environment.pull_request_id)
        .outerjoin(Repository, Repository.id == PullRequest.repository_id)
        .where(or_(RunningSpan.ended_at.is_(None), RunningSpan.ended_at > window_start))
        .where(RunningSpan.started_at < now)
    ).all()
    totals: dict[tuple[datetime, str], Cost] = defaultdict(Cost)
    bounds = [*starts, month_start(now, -1)]
    for span, owner, name in rows:
        repository = f"{owner}/{name}" if owner is not None else UNATTRIBUTED
        for begin, end in _clip(span.started_at, span.ended_at or now, bounds):
            totals[(begin, repository)] += span_cost(span, *_within(span, begin, end, now))
    return [
        MonthlyCost(month=month, repository=repository, cost=cost)
        for (month, repository), cost in sorted(totals.items())
    ]


def _clip(
    start: datetime, end: datetime, bounds: Sequence[datetime]
) -> Iterable[tuple[datetime, datetime]]:
    """The months (by their start) a span touches, each with that month's end."""
    for begin, finish in pairwise(bounds):
        if start < finish and end > begin:
            yield begin, finish


def _within(
    span: RunningSpan, month: datetime, month_end: datetime, now: datetime
) -> tuple[datetime, datetime]:
    end = span.ended_at or now
    return max(span.started_at, month), min(end, month_end)
