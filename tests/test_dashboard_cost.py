"""The dashboard's sleeping servers, pinned PRs and per-repository monthly cost chart."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from pullre.config import Settings
from pullre.cost import pricing as cost
from pullre.cost.chart import cost_chart
from pullre.cost.pricing import Cost, MonthlyCost
from pullre.models import EnvironmentStatus, PullRequestState, RunningSpan, Server
from pullre.web.request_clock import CLOCK_KEY
from tests.page_seeds import add_pull, add_repository, add_server
from tests.web_fixtures import make_settings

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, tmp_path, PULLRE_COST_CURRENCY="EUR")


@pytest.fixture(autouse=True)
def frozen(app: Flask) -> None:
    app.extensions[CLOCK_KEY] = lambda: NOW


def text(client: FlaskClient, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_sleeping_servers_have_their_tile_and_status_filter(
    member_client: FlaskClient, session: Session
) -> None:
    repo = add_repository(session)
    add_pull(session, repo, 1, status=EnvironmentStatus.READY, server=add_server(session, 1))
    add_pull(
        session, repo, 2, status=EnvironmentStatus.SLEEPING,
        server=add_server(session, 2, "stopped"), title="Dozing",
    )  # fmt: skip
    add_server(session, 3, "stopped")
    session.commit()

    page = text(member_client, "/")
    found = re.findall(r'tile-value">(\d+)</span> (\w+)', page)
    tiles = {label: int(value) for value, label in found}
    assert (tiles["busy"], tiles["sleeping"], tiles["free"]) == (1, 1, 1)
    assert '<option value="sleeping">sleeping</option>' in page

    only = text(member_client, "/?status=sleeping")
    assert '<option value="sleeping" selected>' in only
    assert "Dozing" in only
    assert "Change number 1<" not in only
    assert 'class="badge badge-sleeping">sleeping<' in only


def test_pinned_prs_are_listed_with_who_why_and_since_escaped(
    member_client: FlaskClient, session: Session
) -> None:
    repo = add_repository(session)
    pinned = add_pull(
        session, repo, 3, status=EnvironmentStatus.READY, server=add_server(session, 1),
        title="<script>alert('t')</script>",
    )  # fmt: skip
    pinned.pinned_by, pinned.pinned_at = "alice", NOW - timedelta(hours=5)
    pinned.pinned_reason = "demo <img src=x onerror=alert(1)> Friday"
    closed = add_pull(session, repo, 4, title="Closed but pinned")
    closed.state = PullRequestState.CLOSED
    closed.pinned_by, closed.pinned_reason, closed.pinned_at = "ada", "old", NOW
    add_pull(session, repo, 5, title="Not pinned")
    session.commit()

    page = text(member_client, "/")
    start = page.index('class="card pinned-pulls"')
    section = page[start : page.index("</section>", start)]
    rows = re.findall(r"<tr>.*?</tr>", section, re.S)
    assert len(rows) == 2  # the header and alice's pin
    row = rows[1]
    assert f'<a href="/pulls/{pinned.id}">acme/shop#3</a>' in row
    assert "&lt;script&gt;alert(&#39;t&#39;)&lt;/script&gt;" in row
    assert '<td data-label="Pinned by">alice</td>' in row
    assert "demo &lt;img src=x onerror=alert(1)&gt; Friday</td>" in row
    assert ">5 h ago</time>" in row
    assert 'class="badge badge-ready"' in row
    assert "<script>alert" not in page
    assert "<img src=x" not in page
    assert "Closed but pinned" not in section


def test_no_pins_says_who_may_pin(member_client: FlaskClient) -> None:
    assert "No environment is pinned." in text(member_client, "/")


def spans(
    session: Session,
    server: Server,
    environment_id: int | None,
    *runs: tuple[datetime, datetime, str | None],
) -> None:
    for start, end, price in runs:
        session.add(
            RunningSpan(
                server_id=server.id,
                environment_id=environment_id,
                started_at=start,
                ended_at=end,
                hourly_price=None if price is None else Decimal(price),
            )
        )


def test_monthly_cost_per_repository_as_a_chart_and_a_table(
    member_client: FlaskClient, session: Session
) -> None:
    shop, blog = add_repository(session, "acme", "shop"), add_repository(session, "acme", "blog")
    servers = [add_server(session, n) for n in (1, 2, 3)]
    on_shop = add_pull(session, shop, 1, status=EnvironmentStatus.READY, server=servers[0])
    on_blog = add_pull(session, blog, 2, status=EnvironmentStatus.READY, server=servers[1])
    hour = timedelta(hours=1)
    # 2 h in October and 2 h in November at 0.10; blog 10 h in November at 0.05; 1 h nobody's
    # (unpriced) in September; and a run long before the six months shown.
    halloween = datetime(2026, 10, 31, 22, 0, tzinfo=UTC)
    spans(
        session, servers[0], on_shop.environments[-1].id, (halloween, halloween + 4 * hour, "0.10")
    )
    spans(
        session, servers[1], on_blog.environments[-1].id,
        (NOW - 12 * hour, NOW - 2 * hour, "0.05"),
        (datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 2, 2, tzinfo=UTC), "0.05"),
    )  # fmt: skip
    september = datetime(2026, 9, 10, tzinfo=UTC)
    spans(session, servers[2], None, (september, september + hour, None))
    session.commit()

    page = text(member_client, "/")
    assert "Cost per repository, last 6 months" in page
    assert '<div class="sr-only">\n    <table class="list cost-table">' in page
    table = page[page.index('<table class="list cost-table">') :]
    table = table[: table.index("</table>")]
    headers = re.findall(r'<th scope="col">(.*?)</th>', table)
    assert headers == [
        "Repository", "Jun 2026", "Jul 2026", "Aug 2026", "Sep 2026", "Oct 2026", "Nov 2026",
        "Total",
    ]  # fmt: skip
    rows = {
        name: re.findall(r"<td>(.*?)</td>", cells)
        for name, cells in re.findall(r'<tr><th scope="row">(.*?)</th>(.*?)</tr>', table, re.S)
    }
    dash = "—"
    assert list(rows) == ["acme/blog", "acme/shop", "(no PR)", "All repositories"]
    assert rows["acme/blog"] == [dash] * 5 + ["0.50 EUR (10.0 h)", "0.50 EUR (10.0 h)"]
    assert rows["acme/shop"] == [dash] * 4 + ["0.20 EUR (2.0 h)"] * 2 + ["0.40 EUR (4.0 h)"]
    assert rows["(no PR)"] == [dash] * 3 + ["1.0 h (no price)", dash, dash, "1.0 h (no price)"]
    assert rows["All repositories"][3:6] == [
        "1.0 h (no price)", "0.20 EUR (2.0 h)", "0.70 EUR (12.0 h)",
    ]  # fmt: skip

    start = page.index('<svg class="cost-chart"')
    svg = page[start : page.index("</svg>", start)]
    bars = re.findall(r'<title>(.*?)</title><rect class="(series-\d)"', svg)
    assert sorted(bars) == sorted(
        [
            ("acme/blog, November 2026: 0.50 EUR (10.0 h)", "series-0"),
            ("acme/shop, October 2026: 0.20 EUR (2.0 h)", "series-1"),
            ("acme/shop, November 2026: 0.20 EUR (2.0 h)", "series-1"),
        ]
    )  # unpriced time has no height in money: it is said under the chart instead
    assert "1.0 h ran on servers without a price: in the table, not drawn." in page
    assert "0.70 EUR" in svg  # the top of the scale: November's total
    assert "style=" not in page


def test_the_chart_counts_hours_while_no_server_has_a_price() -> None:
    november = datetime(2026, 11, 1, tzinfo=UTC)
    chart = cost_chart(
        [
            MonthlyCost(november, "acme/shop", Cost(hours=Decimal(3), unpriced_hours=Decimal(3))),
            MonthlyCost(november, "acme/blog", Cost(hours=Decimal(1), unpriced_hours=Decimal(1))),
        ],
        NOW,
        "EUR",
    )
    assert chart.measure == "hours"
    assert chart.top == "4.0 h"
    shop, blog = sorted(chart.segments, key=lambda s: s.title)[::-1]
    assert shop.title.startswith("acme/shop")
    assert shop.height == pytest.approx(3 * blog.height, abs=0.2)
    assert shop.y > blog.y  # the bigger one sits at the bottom; blog is stacked on it


def test_an_empty_cost_chart_says_so(member_client: FlaskClient) -> None:
    page = text(member_client, "/")
    assert "nothing has cost anything yet" in page
    assert 'class="cost-chart"' not in page


@pytest.mark.parametrize(
    ("hours", "shown"),
    [
        (Decimal("0.0004"), "under a minute"),
        (Decimal("0.05"), "3 min"),
        (Decimal("0.999"), "60 min"),
        (Decimal(1), "1.0 h"),
        (Decimal("12.25"), "12.3 h"),
    ],
)
def test_short_runs_read_in_minutes_rather_than_as_nothing(hours: Decimal, shown: str) -> None:
    assert cost.hours(hours) == shown


def test_a_month_of_short_runs_is_drawn_with_its_minutes_on_the_axis() -> None:
    """A fresh pool has run minutes only: the chart's scale must not say 0.0 h at full height."""
    spent = [
        MonthlyCost(
            datetime(2026, 11, 1, tzinfo=UTC),
            "acme/shop",
            Cost(hours=Decimal("0.05"), unpriced_hours=Decimal("0.05")),
        )
    ]
    chart = cost_chart(spent, NOW, "EUR")
    assert chart.measure == "hours"
    assert chart.top == "3 min"
