"""The dashboard's cost chart: what each repository's PRs cost per calendar month (UTC).

Drawn like the pool-use chart: plain SVG geometry computed here and drawn by the template (the
CSP allows no inline style or foreign script), with a table of the same numbers for screen
readers. Bars show money; while no server has a price they show running hours instead, so the
chart is never a row of zeros.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from pullre.cost.pricing import UNATTRIBUTED, Cost, MonthlyCost, hours, money, month_start

MONTHS = 6
#: Colour classes in static/style.css; repositories beyond them reuse the palette.
SERIES = 8
SLOT = 80
BAR = 48
PLOT_HEIGHT = 120
LABEL_HEIGHT = 16


@dataclass(frozen=True)
class Segment:
    x: int
    y: float
    height: float
    css: str
    title: str


@dataclass(frozen=True)
class MonthLabel:
    x: int
    label: str
    total: str


@dataclass(frozen=True)
class SeriesRow:
    repository: str
    css: str
    cells: list[str]
    total: str


@dataclass(frozen=True)
class CostChart:
    width: int
    height: int
    plot_height: int
    bar_width: int
    segments: list[Segment]
    months: list[MonthLabel]
    rows: list[SeriesRow]
    #: "amount" (money) or "hours": what the bars measure.
    measure: str
    top: str
    summary: str
    #: Said under a money chart when some running time had no price (so is not drawn).
    unpriced: str = ""

    @property
    def empty(self) -> bool:
        return not self.rows


def _text(cost: Cost, currency: str) -> str:
    if not cost.hours:
        return "—"
    if cost.unpriced_hours == cost.hours:
        return f"{hours(cost.hours)} (no price)"
    return f"{money(cost.amount)} {currency} ({hours(cost.hours)})"


def cost_chart(monthly: Sequence[MonthlyCost], now: datetime, currency: str) -> CostChart:
    """Stacked bars, one per month, a segment per repository (biggest spender at the bottom)."""
    starts = [month_start(now, back) for back in range(MONTHS - 1, -1, -1)]
    column = {start: place for place, start in enumerate(starts)}
    cells: dict[str, list[Cost]] = {}
    for item in monthly:
        if item.month in column:
            row = cells.setdefault(item.repository, [Cost() for _ in starts])
            row[column[item.month]] += item.cost
    measure = "amount" if any(c.amount for row in cells.values() for c in row) else "hours"

    def value(cost: Cost) -> Decimal:
        return cost.amount if measure == "amount" else cost.hours

    def order(name: str) -> tuple[bool, Decimal, str]:
        return name == UNATTRIBUTED, -sum((value(c) for c in cells[name]), Decimal(0)), name

    names = sorted((name for name, row in cells.items() if any(c.hours for c in row)), key=order)
    totals = [sum((cells[name][i] for name in names), Cost()) for i in range(len(starts))]
    top = max([Decimal(0), *(value(total) for total in totals)])
    scale = (PLOT_HEIGHT - 4) / float(top) if top else 0.0
    segments: list[Segment] = []
    for place, start in enumerate(starts):
        base = float(PLOT_HEIGHT)
        for series, name in enumerate(names):
            cost = cells[name][place]
            height = round(float(value(cost)) * scale, 1)
            if not cost.hours or height <= 0:
                continue
            base -= height
            segments.append(
                Segment(
                    x=place * SLOT + (SLOT - BAR) // 2,
                    y=round(base, 1),
                    height=height,
                    css=f"series-{series % SERIES}",
                    title=f"{name}, {start:%B %Y}: {_text(cost, currency)}",
                )
            )
    top_text = f"{money(top)} {currency}" if measure == "amount" else hours(top)
    unpriced = sum((total.unpriced_hours for total in totals), Decimal(0))
    return CostChart(
        width=len(starts) * SLOT,
        height=PLOT_HEIGHT + LABEL_HEIGHT,
        plot_height=PLOT_HEIGHT,
        bar_width=BAR,
        segments=segments,
        months=[
            MonthLabel(
                x=place * SLOT + SLOT // 2,
                label=f"{start:%b %Y}",
                total=_text(totals[place], currency),
            )
            for place, start in enumerate(starts)
        ],
        rows=[
            SeriesRow(
                repository=name,
                css=f"series-{series % SERIES}",
                cells=[_text(cost, currency) for cost in cells[name]],
                total=_text(sum(cells[name], Cost()), currency),
            )
            for series, name in enumerate(names)
        ],
        measure=measure,
        top=top_text,
        summary=(
            f"Cost per repository per month over the last {MONTHS} months; "
            f"the most in one month was {top_text}."
        ),
        unpriced=(
            f"{hours(unpriced)} ran on servers without a price: in the table, not drawn."
            if measure == "amount" and unpriced
            else ""
        ),
    )
