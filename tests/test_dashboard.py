"""The dashboard: every open PR's environment, filters, pages, the pool, its week, and its cost."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session, sessionmaker

from pullre.accounts import user_accounts as accounts
from pullre.environments.active import active_environment
from pullre.environments.status import queue_position, queue_positions
from pullre.models import (
    DeployStep,
    Environment,
    EnvironmentStatus,
    PassRun,
    PullRequest,
    Repository,
    Role,
    RunningSpan,
    Server,
    StepStatus,
    utcnow,
)
from pullre.overview.dashboard import DashboardFilter, dashboard_page
from pullre.overview.pool_usage import hourly_usage, usage_chart
from pullre.reconcile.pool import queued_environments
from pullre.web import create_app
from tests.page_seeds import NOW, add_pull, add_repository, add_server
from tests.statement_count import counted_statements
from tests.web_fixtures import PASSWORD, log_in, make_settings

FETCH = {"X-Requested-With": "fetch"}


def text(client: FlaskClient, path: str, **kwargs: Any) -> str:
    response = client.get(path, **kwargs)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def test_a_row_shows_everything_about_the_pr_environment(
    member_client: FlaskClient, session: Session
) -> None:
    repo = add_repository(session)
    server = add_server(session, 1)
    ready = add_pull(
        session, repo, 7, status=EnvironmentStatus.READY, server=server, smoke=StepStatus.OK
    )
    add_pull(session, repo, 8, status=EnvironmentStatus.QUEUED, queued_minutes_ago=5)
    add_pull(session, repo, 9, status=EnvironmentStatus.QUEUED, queued_minutes_ago=50)
    add_pull(session, repo, 10, title="<img src=x onerror=alert(1)>")
    session.commit()

    page = text(member_client, "/")
    row = re.search(r"<tr>(?:(?!</tr>).)*Change number 7.*?</tr>", page, re.S)
    assert row, page
    cells = row.group(0)
    assert f'href="/pulls/{ready.id}"' in cells
    assert 'href="https://github.com/acme/shop/pull/7"' in cells
    assert "acme/shop" in cells
    assert "alice" in cells
    assert "<code>feature-7</code>" in cells
    assert f"<code>{ready.head_sha[:7]}</code>" in cells
    assert 'class="badge badge-ready">ready<' in cells
    assert "stage-1" in cells
    assert f'href="/pulls/{ready.id}/visit"' in cells  # the link that works in every state
    assert ">https://stage-1.example.com</a>" in cells  # the address stays readable
    assert f'datetime="{NOW.isoformat()}"' in cells
    assert 'class="badge smoke-ok">ok<' in cells
    # PR 9 has waited longer, so it is first in the queue; the others have no smoke run.
    assert re.search(r"Change number 9.*?#1 in queue.*?smoke-none", page, re.S)
    assert re.search(r"Change number 8.*?#2 in queue", page, re.S)
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<img src=x" not in page


def test_smoke_result_is_the_latest_report_for_the_deployed_sha(
    member_client: FlaskClient, session: Session
) -> None:
    repo = add_repository(session)
    pull = add_pull(
        session,
        repo,
        1,
        status=EnvironmentStatus.READY,
        server=add_server(session, 1),
        smoke=StepStatus.FAILED,
    )
    env = pull.environments[-1]
    # A later smoke run of the same sha passed; one of another sha (not deployed) failed.
    session.add(
        DeployStep(
            environment_id=env.id,
            head_sha=pull.head_sha,
            step="smoke",
            status=StepStatus.OK,
            log_tail="",
        )
    )
    session.add(
        DeployStep(
            environment_id=env.id,
            head_sha="b" * 40,
            step="smoke",
            status=StepStatus.FAILED,
            log_tail="",
        )
    )
    session.commit()
    assert 'class="badge smoke-ok">ok<' in text(member_client, "/")


def test_queue_places_match_the_assignment_order(session: Session) -> None:
    repo = add_repository(session)
    for number, minutes in ((1, 3), (2, 30), (3, 3), (4, 10)):
        add_pull(session, repo, number, status=EnvironmentStatus.QUEUED, queued_minutes_ago=minutes)
    session.commit()
    result = dashboard_page(session, DashboardFilter(), github_api_url="https://api.github.com")
    number_of = dict(
        session.execute(
            select(Environment.id, PullRequest.number).join(
                PullRequest, PullRequest.id == Environment.pull_request_id
            )
        ).all()
    )
    expected = {number_of[env_id]: place for env_id, place in queue_positions(session).items()}
    assert {row.number: row.queue_position for row in result.rows} == expected
    assert expected == {2: 1, 4: 2, 1: 3, 3: 4}


def test_pinned_prs_lead_the_queue_in_every_place_that_shows_it(session: Session) -> None:
    """The assignment order, the dashboard and the PR page agree once pins jump the queue."""
    repo = add_repository(session)
    for number, minutes in ((1, 3), (2, 30), (3, 3), (4, 10)):
        add_pull(session, repo, number, status=EnvironmentStatus.QUEUED, queued_minutes_ago=minutes)
    pulls = {p.number: p for p in session.scalars(select(PullRequest))}
    for number in (1, 3):
        pulls[number].pinned_at, pulls[number].pinned_by = utcnow(), "ann"
    session.commit()

    served = [env.pull_request.number for env in queued_environments(session)]
    result = dashboard_page(session, DashboardFilter(), github_api_url="https://api.github.com")
    on_dashboard = sorted(result.rows, key=lambda row: row.queue_position or 0)
    on_pages = {
        number: queue_position(session, active_environment(session, pull))
        for number, pull in pulls.items()
    }
    assert served == [1, 3, 2, 4]
    assert [row.number for row in on_dashboard] == served
    assert sorted(on_pages, key=lambda n: on_pages[n] or 0) == served
    assert sorted(on_pages.values()) == [1, 2, 3, 4]


def test_filters_by_repository_and_status_and_pages_in_a_stable_order(
    member_client: FlaskClient, session: Session
) -> None:
    shop = add_repository(session, "acme", "shop")
    blog = add_repository(session, "acme", "blog")
    server = add_server(session, 1)
    for number in range(1, 121):
        add_pull(session, shop, number, status=EnvironmentStatus.QUEUED)
    add_pull(session, blog, 5, status=EnvironmentStatus.READY, server=server)
    add_pull(session, blog, 6, title="Waiting for labels")
    session.commit()

    only_ready = text(member_client, "/?status=ready")
    assert "acme/blog" in only_ready
    assert "Change number 5" in only_ready
    assert "Change number 1<" not in only_ready
    assert '<option value="ready" selected>' in only_ready

    no_env = text(member_client, "/?status=none")
    assert "Waiting for labels" in no_env
    assert "Change number 5" not in no_env

    blog_only = text(member_client, f"/?repository={blog.id}")
    assert "1 open pull request" not in blog_only
    assert "2 open pull requests" in blog_only
    assert "acme/shop" not in blog_only.split("<tbody>")[1]

    nothing = text(member_client, f"/?repository={blog.id}&status=queued")
    assert "No open pull request matches these filters." in nothing

    # acme/blog sorts first; shop's 120 PRs follow by number, 50 a page, never repeated.
    seen: list[str] = []
    for page in (1, 2, 3):
        body = text(member_client, f"/?page={page}").split("<tbody>")[1]
        seen += re.findall(r'title="Open on GitHub">#(\d+)<', body)
    assert seen == ["5", "6", *[str(n) for n in range(1, 121)]]
    page2 = text(member_client, f"/?status=queued&repository={shop.id}&page=2")
    assert "page 2 of 3" in page2
    assert f'href="/?repository={shop.id}&amp;status=queued&amp;page=3"' in page2
    assert f'href="/?repository={shop.id}&amp;status=queued"' in page2  # back to page 1
    # Nonsense in the query string is ignored, not a 500.
    assert "122 open pull requests" in text(member_client, "/?status=bogus&page=-4&repository=x")


def test_the_refresh_fragment_keeps_the_filter_and_is_only_the_live_parts(
    member_client: FlaskClient, session: Session
) -> None:
    repo = add_repository(session)
    add_pull(session, repo, 1, status=EnvironmentStatus.QUEUED)
    add_pull(session, repo, 2, status=EnvironmentStatus.READY, server=add_server(session, 1))
    session.commit()

    response = member_client.get("/?status=queued", headers=FETCH)
    fragment = response.get_data(as_text=True)
    assert response.headers["X-Pullre-Fragment"] == "environments"
    assert "X-Requested-With" in response.headers["Vary"]
    assert "<html" not in fragment
    assert "<svg" not in fragment  # the chart is not re-drawn on every refresh
    assert 'id="environments" data-live' in fragment
    assert 'id="pool" class="tiles" data-live' in fragment
    assert "Change number 1" in fragment
    assert "Change number 2" not in fragment

    full = member_client.get("/?status=queued")
    assert "X-Pullre-Fragment" not in full.headers
    assert 'data-refresh="10"' in full.get_data(as_text=True)


def test_pool_summary_counts_servers_by_what_they_do(
    member_client: FlaskClient, session: Session
) -> None:
    repo = add_repository(session)
    held_running = add_server(session, 1, "running")
    held_starting = add_server(session, 2, "pending")
    add_server(session, 3, "stopped")
    add_server(session, 4, None)  # never observed: free as far as anyone knows
    add_server(session, 5, "stopping")
    add_pull(session, repo, 1, status=EnvironmentStatus.READY, server=held_running)
    add_pull(session, repo, 2, status=EnvironmentStatus.PROVISIONING, server=held_starting)
    add_pull(session, repo, 3, status=EnvironmentStatus.QUEUED)
    session.commit()

    page = text(member_client, "/")
    tiles = {
        label: int(value) for value, label in re.findall(r'tile-value">(\d+)</span> (\w+)', page)
    }
    assert tiles == {
        "free": 2,
        "busy": 1,
        "sleeping": 0,
        "starting": 1,
        "stopping": 1,
        "queued": 1,
    }


def test_pool_use_chart_is_hourly_peaks_of_the_last_week(
    member_client: FlaskClient, session: Session
) -> None:
    now = utcnow()
    hour = now.replace(minute=0, second=0, microsecond=0)
    session.add_all(
        [
            PassRun(started_at=hour + timedelta(minutes=1), busy_servers=2, pool_size=4, queued=0),
            PassRun(started_at=hour + timedelta(seconds=5), busy_servers=3, pool_size=4, queued=1),
            PassRun(started_at=hour - timedelta(hours=5), busy_servers=1, pool_size=3, queued=0),
            PassRun(started_at=now - timedelta(days=8), busy_servers=9, pool_size=9, queued=9),
        ]
    )
    session.commit()

    samples = hourly_usage(session, now)
    assert [(s.hour, s.busy, s.pool, s.queued) for s in samples] == [
        (hour - timedelta(hours=5), 1, 3, 0),
        (hour, 3, 4, 1),
    ]
    chart = usage_chart(samples, now)
    assert [bar.x for bar in chart.bars] == [chart.width - 24, chart.width - 4]
    assert chart.bars[1].queued_height > 0
    assert chart.bars[0].queued_height == 0
    assert chart.pool_path.startswith(f"M{chart.width - 24} ")
    assert chart.peak_busy == 3

    page = text(member_client, "/")
    svg = page[page.index("<svg") : page.index("</svg>")]
    assert svg.count('class="busy"') == 2
    assert svg.count('class="queued"') == 1
    assert "3 of 4 servers busy, 1 queued" in svg
    assert "style=" not in page  # the CSP forbids inline styles
    assert "<script>" not in page


def test_empty_dashboard_says_what_to_configure_next(admin_client: FlaskClient) -> None:
    page = text(admin_client, "/")
    assert "No pull request environments yet" in page
    assert 'href="/repositories/new"' in page
    assert "(0 in the pool)" in page
    assert "nothing to draw yet" in page


def test_github_links_follow_an_enterprise_api_url(
    tmp_path: Path, db_url: str, session_factory: sessionmaker[Session], session: Session
) -> None:
    settings = make_settings(
        db_url, tmp_path, PULLRE_GITHUB_API_URL="https://ghe.example.com/api/v3"
    )
    app = create_app(settings, session_factory=session_factory)
    accounts.create_user(session, "bob", PASSWORD, Role.MEMBER)
    add_pull(session, add_repository(session), 3)
    session.commit()
    client = app.test_client()
    log_in(client, "bob")
    assert 'href="https://ghe.example.com/acme/shop/pull/3"' in text(client, "/")


def seed_mixed(session: Session, count: int) -> None:
    """``count`` PRs over two repositories, cycling through every kind of row.

    Every fifth one sleeps, every eighth is pinned, and each with a server has run and cost.
    """
    repos = [add_repository(session, "acme", "shop"), add_repository(session, "acme", "blog")]
    for number in range(1, count + 1):
        kind = number % 4
        server = add_server(session, number) if kind in {0, 1} else None
        pull = add_pull(
            session,
            repos[number % 2],
            number,
            status=(
                EnvironmentStatus.READY,
                EnvironmentStatus.FAILED,
                EnvironmentStatus.QUEUED,
                None,
            )[kind],
            server=server,
            smoke=StepStatus.OK if kind == 0 else None,
            queued_minutes_ago=number,
        )
        if number % 8 == 0:
            pull.pinned_by, pull.pinned_reason, pull.pinned_at = "ada", f"demo {number}", NOW
        if server is not None:
            environment = pull.environments[-1]
            if number % 5 == 0:
                environment.status = EnvironmentStatus.SLEEPING
            session.add(
                RunningSpan(
                    server_id=server.id,
                    environment_id=environment.id,
                    started_at=utcnow() - timedelta(hours=3),
                    ended_at=utcnow() - timedelta(hours=1),
                    hourly_price=Decimal("0.0416"),
                )
            )
    session.add(PassRun(started_at=utcnow(), busy_servers=2, pool_size=4, queued=1))
    session.commit()


def test_query_count_does_not_grow_with_rows(
    member_client: FlaskClient, session: Session, engine: Engine
) -> None:
    counts = []
    for size in (5, 200):
        if size == 200:  # start again from an empty database
            for model in (RunningSpan, PullRequest, Repository, Server, PassRun):
                session.execute(delete(model))
        seed_mixed(session, size)
        bodies = []
        for headers in ({}, FETCH):
            with counted_statements(engine) as statements:
                body = text(member_client, "/", headers=headers)
            assert "Change number 1<" in body
            counts.append(len(statements))
            bodies.append(body)
        rows = len(re.findall(r'<td class="pull-cell">', body))
        assert rows == min(size, 50)
        assert bodies[0].count("demo ") == size // 8  # the pinned list, in the full page only
        assert "demo " not in bodies[1]
        assert "acme/shop" in bodies[0].split('class="cost-chart"')[1]
    print("queries per dashboard request (page, fragment) at 5 and 200 PRs:", counts)
    print("\n".join(s.split("\n")[0][:90] for s in statements))
    assert counts[0] == counts[2], counts
    assert counts[1] == counts[3], counts
    assert counts[0] <= 17, counts  # 13, and row details: PRs, attachments, scenarios, steps
