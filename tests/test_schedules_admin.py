"""Admin side of office hours and server prices: schedules, repositories' hours, servers outside
the pool, and every time shown in its schedule's own zone."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from decimal import Decimal
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from pullre import migrate
from pullre.config import Settings
from pullre.db import make_engine, make_session_factory
from pullre.models import Event, Repository, Role, Schedule, Server
from pullre.policies import office_hours
from pullre.servers import registry as servers
from pullre.servers import settings as server_settings
from pullre.web import create_app
from pullre.web.request_clock import CLOCK_KEY
from tests.ec2_fixtures import Ec2Sandbox
from tests.test_servers import add_server
from tests.web_fixtures import MakeUser, csrf_token, log_in, make_settings

#: A Friday afternoon in Berlin (CET, +1), two days before the clocks spring forward.
FRIDAY_AFTERNOON = datetime(2026, 3, 27, 14, 0, tzinfo=UTC)


@pytest.fixture
def app(db_url: str, tmp_path: Path, session_factory: sessionmaker[Session]) -> Flask:
    """The app with prices by type in ``[cost]`` and a clock fixed on a Friday afternoon."""
    settings = make_settings(
        db_url,
        tmp_path,
        PULLRE_COST_CURRENCY="EUR",
        PULLRE_COST_INSTANCE_PRICES="t3.medium=0.0416, t3.large=0.0832",
    )
    app = create_app(settings, session_factory=session_factory)
    app.config["TESTING"] = True
    app.extensions[CLOCK_KEY] = lambda: FRIDAY_AFTERNOON
    return app


def post(client: FlaskClient, path: str, data: dict[str, str | list[str]]) -> tuple[int, str]:
    token = csrf_token(client, "/schedules/new")
    response = client.post(path, data={"csrf_token": token, **data})
    return response.status_code, response.get_data(as_text=True)


def office(session: Session, name: str = "berlin office", zone: str = "Europe/Berlin") -> Schedule:
    schedule = Schedule(
        name=name, time_zone=zone, days=[1, 2, 3, 4, 5], opens_at=time(9), closes_at=time(18)
    )
    session.add(schedule)
    session.commit()
    return schedule


def outside(session: Session, instance_id: str = "i-0aaaaaaaaaaaaaaa1", **values: object) -> Server:
    server = Server(instance_id=instance_id, in_pool=False, name="lab-1", **values)
    session.add(server)
    session.commit()
    return server


def text_of(page: str) -> str:
    """The page's text without tags, whitespace squeezed: what a reader sees."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


# --- schedules --------------------------------------------------------------------------------


def test_add_a_schedule_and_see_it_described_in_its_own_zone(
    admin_client: FlaskClient, session: Session
) -> None:
    status, _ = post(
        admin_client,
        "/schedules/new",
        {
            "name": "berlin office",
            "time_zone": "Europe/Berlin",
            "days": ["5", "1", "3", "2", "4"],
            "opens_at": "09:00",
            "closes_at": "18:00",
        },
    )
    assert status == 302
    schedule = session.scalars(select(Schedule)).one()
    assert (schedule.time_zone, schedule.days, schedule.opens_at, schedule.closes_at) == (
        "Europe/Berlin",
        [1, 2, 3, 4, 5],
        time(9),
        time(18),
    )
    page = text_of(admin_client.get("/schedules/").get_data(as_text=True))
    assert "Office hours berlin office added." in page
    assert "Mon\N{EN DASH}Fri 09:00\N{EN DASH}18:00 (Europe/Berlin)" in page
    # 14:00 UTC is 15:00 in Berlin: open, closing at 18:00 CET = 17:00 UTC, said in Berlin time.
    assert "open now" in page
    assert "closes Fri 2026-03-27 18:00 CET (Europe/Berlin)" in page
    assert "Next change (in the schedule's time zone)" in page
    assert session.scalars(select(Event.kind)).all() == ["schedule.saved"]


def test_next_opening_after_the_weekend_is_shown_in_summer_time(
    app: Flask, admin_client: FlaskClient, session: Session
) -> None:
    office(session)
    app.extensions[CLOCK_KEY] = lambda: datetime(2026, 3, 27, 18, 0, tzinfo=UTC)
    page = text_of(admin_client.get("/schedules/").get_data(as_text=True))
    assert "closed now" in page
    assert "opens Mon 2026-03-30 09:00 CEST (Europe/Berlin)" in page


def test_a_window_past_midnight_is_said_to_close_the_next_day(
    admin_client: FlaskClient, session: Session
) -> None:
    status, _ = post(
        admin_client,
        "/schedules/new",
        {
            "name": "nights",
            "time_zone": "UTC",
            "days": ["5"],
            "opens_at": "22:00",
            "closes_at": "06:00",
        },
    )
    assert status == 302
    page = text_of(admin_client.get("/schedules/").get_data(as_text=True))
    assert "Fri 22:00\N{EN DASH}06:00 next day (UTC)" in page
    assert "opens Fri 2026-03-27 22:00 UTC (UTC)" in page


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"time_zone": "Europe/Berln"}, "Unknown time zone &#39;Europe/Berln&#39;"),
        ({"time_zone": "europe/berlin"}, "Unknown time zone &#39;europe/berlin&#39;"),
        ({"days": []}, "Choose at least one day."),
        ({"days": ["8"]}, "not a valid choice"),
        ({"opens_at": "25:00"}, "Not a valid time value"),
        ({"name": ""}, "This field is required."),
    ],
)
def test_bad_schedules_are_form_errors(
    admin_client: FlaskClient, session: Session, changes: dict[str, str | list[str]], error: str
) -> None:
    data: dict[str, str | list[str]] = {
        "name": "office",
        "time_zone": "Europe/Berlin",
        "days": ["1"],
        "opens_at": "09:00",
        "closes_at": "18:00",
        **changes,
    }
    status, page = post(admin_client, "/schedules/new", data)
    assert status == 200
    assert error in page, re.findall(r"class=\"error\">[^<]*", page)
    assert session.scalars(select(Schedule)).all() == []


def test_the_zone_field_suggests_known_zones(admin_client: FlaskClient) -> None:
    page = admin_client.get("/schedules/new").get_data(as_text=True)
    assert 'list="time-zones"' in page
    assert '<option value="America/New_York">' in page


def test_duplicate_name_is_a_form_error_and_edit_keeps_its_own_name(
    admin_client: FlaskClient, session: Session
) -> None:
    first, second = office(session, "first"), office(session, "second")
    data: dict[str, str | list[str]] = {
        "name": "first",
        "time_zone": "America/New_York",
        "days": ["6", "7"],
        "opens_at": "10:00",
        "closes_at": "14:00",
    }
    status, page = post(admin_client, f"/schedules/{second.id}/edit", data)
    assert (status, "A schedule named first exists already." in page) == (200, True)
    status, _ = post(admin_client, f"/schedules/{first.id}/edit", data)
    assert status == 302
    session.refresh(first)
    assert (first.time_zone, first.days, first.opens_at) == ("America/New_York", [6, 7], time(10))


def test_names_are_escaped(admin_client: FlaskClient, session: Session) -> None:
    office(session, "<script>alert(1)</script>")
    page = admin_client.get("/schedules/").get_data(as_text=True)
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_removing_a_schedule_in_use_says_where_and_leaves_them_without_hours(
    admin_client: FlaskClient, session: Session
) -> None:
    schedule = office(session)
    repo = Repository(owner="acme", name="shop", schedule_id=schedule.id, schedule_state="closed")
    session.add(repo)
    server = outside(session, schedule_id=schedule.id)
    session.commit()
    page = text_of(admin_client.get("/schedules/").get_data(as_text=True))
    assert "repository acme/shop, server lab-1" in page
    listing = admin_client.get("/schedules/").get_data(as_text=True)
    assert (
        'data-confirm="Remove office hours berlin office? repository acme/shop, server lab-1'
        in listing
    )

    status, _ = post(admin_client, f"/schedules/{schedule.id}/delete", {})
    assert status == 302
    page = text_of(admin_client.get("/schedules/").get_data(as_text=True))
    assert (
        "Office hours berlin office removed. No office hours any more for: repository acme/shop,"
        " server lab-1." in page
    )
    session.expire_all()
    assert (repo.schedule_id, server.schedule_id) == (None, None)
    assert session.scalars(select(Schedule)).all() == []
    assert session.scalars(select(Event.kind).order_by(Event.id)).all()[-1] == "schedule.removed"


def test_members_get_403_and_posts_need_a_csrf_token(
    app: Flask, member_client: FlaskClient, admin_client: FlaskClient, session: Session
) -> None:
    schedule = office(session)
    server = outside(session)
    routes = [
        (rule.rule, method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.split(".")[0] in {"schedules", "server_settings"}
        for method in rule.methods - {"HEAD", "OPTIONS"}
    ]
    assert len(routes) >= 8
    token = csrf_token(member_client, "/")
    for rule, method in routes:
        path = rule.replace("<int:schedule_id>", str(schedule.id)).replace(
            "<int:server_id>", str(server.id)
        )
        response = member_client.open(path, method=method, data={"csrf_token": token})
        assert response.status_code == 403, (rule, method)
    response = admin_client.post(f"/schedules/{schedule.id}/delete")
    assert response.status_code == 400
    assert session.get(Schedule, schedule.id) is not None


# --- repositories -----------------------------------------------------------------------------


def test_a_repository_takes_office_hours_and_the_list_shows_them(
    admin_client: FlaskClient, session: Session
) -> None:
    schedule = office(session)
    repo = Repository(owner="acme", name="shop", schedule_state="closed")
    session.add(repo)
    session.commit()
    form = admin_client.get(f"/repositories/{repo.id}/edit").get_data(as_text=True)
    assert "None: always on" in form
    assert "berlin office: Mon\N{EN DASH}Fri 09:00\N{EN DASH}18:00 (Europe/Berlin)" in form
    data: dict[str, str | list[str]] = {
        "full_name": "acme/shop",
        "enabled": "y",
        "schedule_id": str(schedule.id),
    }
    status, _ = post(admin_client, f"/repositories/{repo.id}/edit", data)
    assert status == 302
    session.refresh(repo)
    # The side last acted on stays: the pass compares it with the new hours.
    assert (repo.schedule_id, repo.schedule_state) == (schedule.id, "closed")
    row = text_of(admin_client.get("/repositories/").get_data(as_text=True))
    assert "berlin office : Mon\N{EN DASH}Fri 09:00\N{EN DASH}18:00 (Europe/Berlin)" in row

    status, _ = post(admin_client, f"/repositories/{repo.id}/edit", {**data, "schedule_id": ""})
    assert status == 302
    session.refresh(repo)
    assert repo.schedule_id is None
    assert "always on" in admin_client.get("/repositories/").get_data(as_text=True)
    status, page = post(
        admin_client, f"/repositories/{repo.id}/edit", {**data, "schedule_id": "999"}
    )
    assert (status, "Not a valid choice" in page) == (200, True)


# --- servers: price and office hours ------------------------------------------------------------


def test_pool_server_price_own_by_type_or_none(admin_client: FlaskClient, session: Session) -> None:
    server = add_server(session, "i-0123456789abcdef0", "stage-1")
    listing = text_of(admin_client.get("/servers/").get_data(as_text=True))
    assert "no price" in listing
    server.instance_type = "t3.large"
    session.commit()
    listing = text_of(admin_client.get("/servers/").get_data(as_text=True))
    assert "t3.large 0.0832 EUR/h (t3.large price)" in listing

    edit = admin_client.get(f"/servers/{server.id}/edit").get_data(as_text=True)
    assert "Instance type: t3.large" in text_of(edit)
    assert "Pool servers follow their PRs instead" in edit
    [widget] = re.findall(r'<select[^>]*name="schedule_id"[^>]*>', edit)
    assert "disabled" in widget
    status, _ = post(
        admin_client, f"/servers/{server.id}/edit", {"name": "stage-1", "hourly_price": "0.05"}
    )
    assert status == 302
    session.refresh(server)
    assert server.hourly_price == Decimal("0.05")
    listing = text_of(admin_client.get("/servers/").get_data(as_text=True))
    assert "0.05 EUR/h (own price)" in listing
    assert 'value="0.05"' in admin_client.get(f"/servers/{server.id}/edit").get_data(as_text=True)

    status, _ = post(
        admin_client, f"/servers/{server.id}/edit", {"name": "stage-1", "hourly_price": ""}
    )
    assert status == 302
    session.refresh(server)
    assert server.hourly_price is None
    kinds = session.scalars(select(Event.kind).order_by(Event.id)).all()
    assert kinds[-2:] == ["server.saved", "server.saved"]


@pytest.mark.parametrize(
    ("price", "error"),
    [
        ("-1", "at least 0"),
        ("abc", "is not a number"),
        ("0.00001", "at most 4 decimal places"),
        ("NaN", "at least 0"),
        ("10000000", "at most 999999.9999"),
    ],
)
def test_bad_prices_are_form_errors(
    admin_client: FlaskClient, session: Session, price: str, error: str
) -> None:
    server = add_server(session, "i-0123456789abcdef0", "stage-1")
    status, page = post(
        admin_client, f"/servers/{server.id}/edit", {"name": "stage-1", "hourly_price": price}
    )
    assert (status, error in page) == (200, True)
    session.refresh(server)
    assert server.hourly_price is None


def test_a_pool_server_never_keeps_office_hours(
    admin_client: FlaskClient, session: Session
) -> None:
    schedule = office(session)
    server = add_server(session, "i-0123456789abcdef0", "stage-1")
    status, _ = post(
        admin_client,
        f"/servers/{server.id}/edit",
        {"name": "stage-1", "hourly_price": "", "schedule_id": str(schedule.id)},
    )
    assert status == 302
    session.refresh(server)
    assert server.schedule_id is None
    with pytest.raises(servers.ServerError, match="pool servers follow their PRs"):
        server_settings.set_price_and_schedule(
            session, server, hourly_price=None, schedule=schedule
        )


def test_add_a_server_outside_the_pool_with_office_hours(
    admin_client: FlaskClient, session: Session
) -> None:
    schedule = office(session)
    pool_server = add_server(session, "i-0123456789abcdef0", "stage-1")
    data: dict[str, str | list[str]] = {
        "instance_id": pool_server.instance_id,
        "name": "lab-1",
        "hourly_price": "0.1",
        "schedule_id": str(schedule.id),
    }
    status, page = post(admin_client, "/servers/outside/new", data)
    assert (status, "i-0123456789abcdef0 is in the pool" in page) == (200, True)

    status, _ = post(
        admin_client, "/servers/outside/new", {**data, "instance_id": "i-0aaaaaaaaaaaaaaa1"}
    )
    assert status == 302
    server = session.scalars(select(Server).where(Server.in_pool.is_(False))).one()
    assert (server.name, server.hourly_price, server.schedule_id, server.agent_token_hash) == (
        "lab-1",
        Decimal("0.1"),
        schedule.id,
        None,
    )
    listing = admin_client.get("/servers/").get_data(as_text=True)
    outside_part = text_of(listing.split('id="outside"')[1].split('id="ec2"')[0])
    assert "lab-1 i-0aaaaaaaaaaaaaaa1" in outside_part
    assert "0.10 EUR/h (own price)" in outside_part
    assert "Mon\N{EN DASH}Fri 09:00\N{EN DASH}18:00 (Europe/Berlin)" in outside_part
    assert "stops Fri 2026-03-27 18:00 CET (Europe/Berlin)" in outside_part
    status, page = post(
        admin_client, "/servers/outside/new", {**data, "instance_id": "i-0aaaaaaaaaaaaaaa1"}
    )
    assert (status, "already known outside the pool" in page) == (200, True)


def test_an_outside_server_edits_its_hours_and_joining_the_pool_drops_them(
    app: Flask, admin_client: FlaskClient, session: Session
) -> None:
    schedule = office(session)
    server = outside(session, schedule_state="closed")
    app.extensions[CLOCK_KEY] = lambda: datetime(2026, 3, 28, 12, 0, tzinfo=UTC)  # Saturday
    status, _ = post(
        admin_client,
        f"/servers/{server.id}/edit",
        {"name": "lab-1", "hourly_price": "", "schedule_id": str(schedule.id)},
    )
    assert status == 302
    session.refresh(server)
    assert (server.schedule_id, server.schedule_state) == (schedule.id, "closed")
    listing = text_of(admin_client.get("/servers/").get_data(as_text=True))
    assert "starts Mon 2026-03-30 09:00 CEST (Europe/Berlin)" in listing

    servers.register_server(session, server.instance_id, "https://lab.example", "lab-1")
    session.commit()
    assert (server.in_pool, server.schedule_id, server.schedule_state) == (True, None, None)


def test_outside_servers_start_and_stop_by_hand(
    session: Session,
    settings: Settings,
    session_factory: sessionmaker[Session],
    ec2: Ec2Sandbox,
    make_user: MakeUser,
) -> None:
    client = create_app(
        settings, session_factory=session_factory, ec2=lambda: ec2.adapter
    ).test_client()
    log_in(client, make_user("hands", Role.ADMIN))
    [instance_id] = ec2.create_instances(1)
    server = outside(session, instance_id=instance_id)
    token = csrf_token(client, "/servers/")
    assert client.post(f"/servers/{server.id}/start", data={"csrf_token": token}).status_code == 302
    assert ec2.state_of(instance_id) == "running"
    page = client.get("/servers/").get_data(as_text=True)
    assert "No PR holds it" not in page
    assert f"{instance_id} is pending." in page
    # Pool-only actions stay refused for it.
    assert client.post(f"/servers/{server.id}/token", data={"csrf_token": token}).status_code == 404


def test_schedules_and_prices_round_trip_on_mysql(mysql_database_url: str) -> None:
    """TIME comes back from MySQL as a time (not PyMySQL's timedelta), days as a list, prices
    exactly, and removing a schedule clears it on repositories and servers there too."""
    migrate.upgrade(mysql_database_url)
    engine = make_engine(mysql_database_url)
    try:
        with make_session_factory(engine)() as session:
            schedule = Schedule(
                name="nights",
                time_zone="Europe/Berlin",
                days=[5],
                opens_at=time(22),
                closes_at=time(6),
            )
            session.add(schedule)
            session.flush()
            session.add(Repository(owner="acme", name="shop", schedule_id=schedule.id))
            server_settings.add_outside_server(
                session,
                "i-0aaaaaaaaaaaaaaa1",
                hourly_price=Decimal("0.0416"),
                schedule=schedule,
            )
            session.commit()
        with make_session_factory(engine)() as session:
            stored = session.scalars(select(Schedule)).one()
            assert (stored.days, stored.opens_at, stored.closes_at) == ([5], time(22), time(6))
            # Saturday 2026-03-28 03:00 in Berlin is inside Friday night's window.
            assert office_hours.is_open(stored, datetime(2026, 3, 28, 2, 0, tzinfo=UTC))
            server = session.scalars(select(Server)).one()
            assert server.hourly_price == Decimal("0.0416")
            assert server_settings.next_start_or_stop(server, FRIDAY_AFTERNOON) == (
                "starts Fri 2026-03-27 22:00 CET (Europe/Berlin)"
            )
            session.delete(stored)
            session.commit()
        with make_session_factory(engine)() as session:
            assert session.scalars(select(Repository.schedule_id)).one() is None
            assert session.scalars(select(Server.schedule_id)).one() is None
    finally:
        engine.dispose()
