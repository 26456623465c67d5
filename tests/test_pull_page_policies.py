"""The PR page and the visit link for sleep, wake, pins, expiry, office hours and cost.

The app runs with ``[pool] ttl_hours = 48`` and ``[cost] currency = EUR`` on the test's
rolled-back database, and web_fixtures' ``clock``, which the test moves.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from pullre.config import Settings
from pullre.models import (
    Environment,
    EnvironmentStatus,
    Event,
    PullRequest,
    Role,
    RunningSpan,
    Scenario,
    ScenarioAttachment,
    Schedule,
    SleepReason,
)
from tests.clock import MovingClock
from tests.page_seeds import add_pull, add_repository, add_server
from tests.web_fixtures import (
    CLOCK_START,
    MakeUser,
    csrf_token,
    logged_in_client,
    make_settings,
)

T0 = CLOCK_START  # a Tuesday, 10:00 UTC: where the clock fixture starts


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, tmp_path, PULLRE_POOL_TTL_HOURS="48", PULLRE_COST_CURRENCY="EUR")


@pytest.fixture
def author_client(app: Flask, make_user: MakeUser) -> FlaskClient:
    """The PR author's own account (page_seeds' PRs are by ``alice``)."""
    return logged_in_client(app, make_user("alice", Role.MEMBER))


def page_of(client: FlaskClient, pull: PullRequest) -> str:
    response = client.get(f"/pulls/{pull.id}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def post(
    client: FlaskClient, pull: PullRequest, action: str, **form: str
) -> tuple[int, str | None]:
    token = csrf_token(client, f"/pulls/{pull.id}")
    response = client.post(f"/pulls/{pull.id}/{action}", data={"csrf_token": token, **form})
    return response.status_code, response.location


def flash_of(page: str) -> list[str]:
    return re.findall(r'<p class="flash flash-\w+" role="status">(.*?)</p>', page, re.S)


def sleeping_pull(
    session: Session, number: int = 5, reason: SleepReason = SleepReason.IDLE
) -> PullRequest:
    """A PR whose ready environment went to sleep three hours before T0."""
    pull = add_pull(
        session,
        add_repository(session),
        number,
        status=EnvironmentStatus.SLEEPING,
        server=add_server(session, number),
    )
    environment = pull.environments[-1]
    environment.slept_at = T0 - timedelta(hours=3)
    environment.sleep_reason = reason
    environment.ready_before_sleep = True
    session.commit()
    return pull


def test_a_sleeping_pr_says_since_when_and_why_and_anyone_wakes_it(
    member_client: FlaskClient, session: Session, clock: MovingClock
) -> None:
    pull = sleeping_pull(session, reason=SleepReason.IDLE)
    page = page_of(member_client, pull)
    assert 'class="badge badge-sleeping">sleeping<' in page
    assert 'since <time datetime="2026-11-24T07:00:00+00:00">' in page
    assert ": idle." in page
    assert "Open staging" not in page  # its server is stopped: nothing answers there
    wake_form = re.search(
        rf'<form method="post" action="/pulls/{pull.id}/wake".*?</form>', page, re.S
    )
    assert wake_form is not None
    assert 'name="csrf_token"' in wake_form.group(0)
    assert f'action="/pulls/{pull.id}/sleep"' not in page

    clock.now = T0 + timedelta(minutes=1)
    assert post(member_client, pull, "wake") == (302, f"/pulls/{pull.id}")
    session.refresh(pull.environments[-1])
    environment = pull.environments[-1]
    assert environment.status is EnvironmentStatus.PROVISIONING
    assert environment.deploy_requested_at == clock.now
    assert environment.slept_at is None
    page = page_of(member_client, pull)
    assert "Waking #5" in " ".join(flash_of(page))
    assert 'class="badge badge-provisioning">provisioning<' in page
    assert "wakes (woken by member)" in page  # the timeline
    # Waking what is awake is refused with the reason, not a 500.
    assert post(member_client, pull, "wake") == (302, f"/pulls/{pull.id}")
    assert "#5 is provisioning, not sleeping." in flash_of(page_of(member_client, pull))


def test_sleep_now_by_hand_names_who_and_keeps_server_and_schema(
    member_client: FlaskClient, session: Session, clock: MovingClock
) -> None:
    pull = add_pull(
        session, add_repository(session), 6, status=EnvironmentStatus.READY,
        server=add_server(session, 1),
    )  # fmt: skip
    session.commit()
    page = page_of(member_client, pull)
    assert f'action="/pulls/{pull.id}/sleep"' in page
    assert post(member_client, pull, "sleep")[0] == 302
    environment = session.scalars(select(Environment)).one()
    session.refresh(environment)
    assert environment.status is EnvironmentStatus.SLEEPING
    assert environment.sleep_reason is SleepReason.BY_HAND
    assert environment.server_id is not None
    assert environment.schema_name == "pr_1_6"
    page = page_of(member_client, pull)
    assert "put to sleep by member" in page
    assert "#6 goes to sleep" in " ".join(flash_of(page))


def test_sleep_now_is_refused_for_a_queued_pr(
    member_client: FlaskClient, session: Session, clock: MovingClock
) -> None:
    pull = add_pull(session, add_repository(session), 7, status=EnvironmentStatus.QUEUED)
    session.commit()
    assert f'action="/pulls/{pull.id}/sleep"' not in page_of(member_client, pull)
    assert post(member_client, pull, "sleep")[0] == 302
    assert "only a ready or failed one can sleep" in " ".join(
        flash_of(page_of(member_client, pull))
    )
    assert session.scalars(select(Event.kind).where(Event.kind == "sleeping")).all() == []


def test_opening_the_page_is_activity_and_expiry_counts_from_it(
    member_client: FlaskClient, session: Session, clock: MovingClock
) -> None:
    pull = add_pull(
        session, add_repository(session), 8, status=EnvironmentStatus.READY,
        server=add_server(session, 1),
    )  # fmt: skip
    environment = pull.environments[-1]
    environment.expiry_warned_at = T0 - timedelta(hours=1)
    session.commit()
    clock.now = T0 + timedelta(hours=5)
    page = page_of(member_client, pull)
    session.refresh(environment)
    assert environment.last_activity_at == clock.now
    assert environment.expiry_warned_at is None
    expires = clock.now + timedelta(hours=48)
    assert re.search(
        rf'<dd class="expiry"><time datetime="{re.escape(expires.isoformat())}">'
        r"[^<]+</time> unless someone opens it, pushes or pins it</dd>",
        page,
    )


def test_the_author_pins_with_a_reason_others_may_not(
    author_client: FlaskClient,
    member_client: FlaskClient,
    admin_client: FlaskClient,
    session: Session,
    clock: MovingClock,
) -> None:
    pull = add_pull(
        session, add_repository(session), 9, status=EnvironmentStatus.READY,
        server=add_server(session, 1),
    )  # fmt: skip
    session.commit()
    member_page = page_of(member_client, pull)
    assert f'action="/pulls/{pull.id}/pin"' not in member_page
    assert post(member_client, pull, "pin", reason="mine now")[0] == 403
    session.refresh(pull)
    assert pull.pinned_at is None

    page = page_of(author_client, pull)
    form = re.search(rf'<form method="post" action="/pulls/{pull.id}/pin".*?</form>', page, re.S)
    assert form is not None
    assert 'name="csrf_token"' in form.group(0)
    assert re.search(r'<input type="text" id="pin-reason" name="reason" required', form.group(0))
    assert post(author_client, pull, "pin", reason="   ")[0] == 302  # blank: refused, said why
    assert "say why the environment must stay up." in flash_of(page_of(author_client, pull))
    session.refresh(pull)
    assert pull.pinned_at is None

    clock.now = T0 + timedelta(minutes=2)
    reason = "Demo for <b>ACME</b> & co on Friday"
    assert post(author_client, pull, "pin", reason=reason)[0] == 302
    session.refresh(pull)
    assert (pull.pinned_by, pull.pinned_reason, pull.pinned_at) == ("alice", reason, clock.now)
    page = page_of(author_client, pull)
    assert "Pinned by <strong>alice</strong>" in page
    assert "<q>Demo for &lt;b&gt;ACME&lt;/b&gt; &amp; co on Friday</q>" in page
    assert "<b>ACME" not in page
    assert 'class="expiry"' not in page  # a pinned environment never expires
    assert f'action="/pulls/{pull.id}/pin"' not in page
    assert f'action="/pulls/{pull.id}/unpin"' in page

    assert f'action="/pulls/{pull.id}/unpin"' not in page_of(member_client, pull)
    assert post(member_client, pull, "unpin")[0] == 403
    assert post(admin_client, pull, "unpin")[0] == 302
    session.refresh(pull)
    assert pull.pinned_at is None
    assert "unpinned by root-admin" in page_of(admin_client, pull)


@pytest.mark.parametrize("action", ["wake", "sleep", "pin", "unpin"])
def test_policy_actions_need_the_csrf_token(
    admin_client: FlaskClient, session: Session, clock: MovingClock, action: str
) -> None:
    pull = sleeping_pull(session)
    pull.pinned_by, pull.pinned_reason, pull.pinned_at = "ada", "keep", T0
    session.commit()
    response = admin_client.post(f"/pulls/{pull.id}/{action}", data={"reason": "x"})
    assert response.status_code == 400
    session.refresh(pull)
    assert pull.environments[-1].status is EnvironmentStatus.SLEEPING
    assert pull.pinned_reason == "keep"


def span(
    session: Session,
    environment: Environment,
    start: timedelta,
    end: timedelta | None,
    price: str | None,
) -> None:
    session.add(
        RunningSpan(
            server_id=environment.server_id,
            environment_id=environment.id,
            started_at=T0 + start,
            ended_at=None if end is None else T0 + end,
            hourly_price=None if price is None else Decimal(price),
        )
    )


def test_cost_of_this_stay_and_all_stays_and_why_the_last_stay_ended(
    member_client: FlaskClient, session: Session, clock: MovingClock
) -> None:
    pull = add_pull(session, add_repository(session), 10)
    earlier = Environment(
        pull_request_id=pull.id,
        status=EnvironmentStatus.RELEASED,
        queued_at=T0 - timedelta(days=3),
        released_at=T0 - timedelta(days=1),
        release_reason="expired: untouched for 48 h",
    )
    session.add(earlier)
    session.flush()
    current = Environment(
        pull_request_id=pull.id,
        status=EnvironmentStatus.READY,
        server_id=add_server(session, 1).id,
        queued_at=T0 - timedelta(hours=10),
    )
    session.add(current)
    session.flush()
    # Ran 3 h, slept 5 h, has run 1 h so far at 0.10/h; an earlier stay ran 2 h unpriced.
    span(session, current, timedelta(hours=-9), timedelta(hours=-6), "0.10")
    span(session, current, timedelta(hours=-1), None, "0.10")
    session.add(
        RunningSpan(
            environment_id=earlier.id,
            started_at=T0 - timedelta(days=2),
            ended_at=T0 - timedelta(days=2) + timedelta(hours=2),
        )
    )
    session.commit()

    page = page_of(member_client, pull)
    stay = re.search(r'<dd class="cost-stay">(.*?)</dd>', page, re.S)
    total = re.search(r'<dd class="cost-total">(.*?)</dd>', page, re.S)
    assert stay is not None
    assert total is not None
    assert stay.group(1).startswith("4.0 h running · <strong>0.40 EUR</strong>")
    assert 'running now, since <time datetime="2026-11-24T09:00:00+00:00">' in stay.group(1)
    assert total.group(1).startswith(
        "6.0 h running · <strong>0.40 EUR</strong> (and 2.0 h unpriced: no price known"
    )
    assert "The last stay was ended by pullre on" in page
    assert ": expired: untouched for 48 h." in page


def test_a_pr_that_never_ran_costs_nothing_yet(
    member_client: FlaskClient, session: Session, clock: MovingClock
) -> None:
    pull = add_pull(session, add_repository(session), 11, status=EnvironmentStatus.QUEUED)
    session.commit()
    page = page_of(member_client, pull)
    assert '<dd class="cost-stay">not run yet</dd>' in page
    assert "The last stay was ended by pullre" not in page
    assert 'class="expiry"' not in page  # a queued PR holds no server, so nothing expires


def test_a_queued_pr_outside_office_hours_waits_for_opening_time(
    member_client: FlaskClient, session: Session, clock: MovingClock
) -> None:
    repo = add_repository(session)
    repo.schedule = Schedule(
        name="Berlin office", time_zone="Europe/Berlin", days=[1, 2, 3, 4, 5],
        opens_at=time(8, 0), closes_at=time(18, 0),
    )  # fmt: skip
    pull = add_pull(session, repo, 12, status=EnvironmentStatus.QUEUED)
    session.commit()

    clock.now = datetime(2026, 11, 24, 20, 30, tzinfo=UTC)  # Tuesday 21:30 in Berlin
    page = page_of(member_client, pull)
    wait = re.search(r'<dd class="office-hours-wait">(.*?)</dd>', page, re.S)
    assert wait is not None
    assert "acme/shop is outside its office hours" in wait.group(1)
    assert "waits for opening time, Wed 2026-11-25 08:00 CET (Europe/Berlin)" in wait.group(1)

    clock.now = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)  # Wednesday 10:00: open
    assert "office-hours-wait" not in page_of(member_client, pull)


def test_an_environment_asleep_for_office_hours_says_when_it_wakes(
    member_client: FlaskClient, session: Session, clock: MovingClock
) -> None:
    pull = sleeping_pull(session, 13, reason=SleepReason.OFFICE_HOURS)
    pull.repository.schedule = Schedule(
        name="New York", time_zone="America/New_York", days=[1, 2, 3, 4, 5],
        opens_at=time(9, 0), closes_at=time(17, 0),
    )  # fmt: skip
    session.commit()
    clock.now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)  # Saturday
    page = page_of(member_client, pull)
    assert ": outside office hours." in page
    assert "It wakes when office hours open, Mon 2026-11-30 09:00 EST (America/New_York)." in page


# --- /pulls/<id>/visit ----------------------------------------------------------------------


def test_visiting_a_ready_environment_goes_to_its_app_and_is_activity(
    member_client: FlaskClient, session: Session, clock: MovingClock
) -> None:
    pull = add_pull(
        session, add_repository(session), 20, status=EnvironmentStatus.READY,
        server=add_server(session, 4),
    )  # fmt: skip
    session.commit()
    clock.now = T0 + timedelta(hours=2)
    response = member_client.get(f"/pulls/{pull.id}/visit")
    assert response.status_code == 303
    assert response.location == "https://stage-4.example.com"
    environment = pull.environments[-1]
    session.refresh(environment)
    assert environment.last_activity_at == clock.now


def test_visiting_needs_a_login(client: FlaskClient, session: Session) -> None:
    pull = add_pull(session, add_repository(session), 21)
    session.commit()
    response = client.get(f"/pulls/{pull.id}/visit")
    assert response.status_code == 302
    assert response.location.startswith("/login?next=")
    assert f"/pulls/{pull.id}/visit" in response.location.replace("%2F", "/")


def test_visiting_a_sleeping_environment_offers_wake_then_waits_until_ready(
    member_client: FlaskClient, session: Session, clock: MovingClock
) -> None:
    pull = sleeping_pull(session, 22)
    environment = pull.environments[-1]

    response = member_client.get(f"/pulls/{pull.id}/visit")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Refresh" not in response.headers  # nothing to wait for until someone wakes it
    form = re.search(r'<form method="post" action="(.*?)">(.*?)</form>', page, re.S)
    assert form is not None
    assert form.group(1) == f"/pulls/{pull.id}/wake"
    assert 'name="csrf_token"' in form.group(2)
    assert '<input type="hidden" name="next" value="visit">' in form.group(2)
    session.refresh(environment)
    assert environment.status is EnvironmentStatus.SLEEPING  # a GET never wakes it

    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    woken = member_client.post(
        f"/pulls/{pull.id}/wake", data={"csrf_token": token.group(1), "next": "visit"}
    )
    assert woken.status_code == 302
    assert woken.location == f"/pulls/{pull.id}/visit?wait=1"
    session.refresh(environment)
    assert environment.status is EnvironmentStatus.PROVISIONING

    waiting = member_client.get(woken.location)
    assert waiting.status_code == 200
    assert waiting.headers["Refresh"] == "5"
    assert "is starting and its app is being deployed" in waiting.get_data(as_text=True)
    assert "Waking #22" in waiting.get_data(as_text=True)

    environment.status = EnvironmentStatus.READY  # the agent reported healthy
    session.commit()
    done = member_client.get(woken.location)
    assert done.status_code == 303
    assert done.location == "https://stage-22.example.com"


@pytest.mark.parametrize(
    ("status", "wait", "message", "refresh"),
    [
        (EnvironmentStatus.QUEUED, "", "#23 waits #1 in the queue for a server", True),
        (EnvironmentStatus.FAILED, "1", "The last deploy of #23 failed", False),
        (EnvironmentStatus.PROVISIONING, "", "#23&#39;s server is starting", True),
        (None, "", "#23 has no staging environment now", False),
    ],
)
def test_visiting_anything_else_says_what_is_happening_and_waits_while_that_helps(
    member_client: FlaskClient,
    session: Session,
    clock: MovingClock,
    status: EnvironmentStatus | None,
    wait: str,
    message: str,
    refresh: bool,
) -> None:
    server = None if status in {None, EnvironmentStatus.QUEUED} else add_server(session, 1)
    pull = add_pull(session, add_repository(session), 23, status=status, server=server)
    session.commit()
    response = member_client.get(f"/pulls/{pull.id}/visit" + (f"?wait={wait}" if wait else ""))
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert ("Refresh" in response.headers) is refresh
    if status is not None:
        session.refresh(pull.environments[-1])
        assert pull.environments[-1].status is status


# --- scenario runs ----------------------------------------------------------------------------


def test_a_scenario_run_wakes_the_environment_and_each_step_is_activity(
    member_client: FlaskClient, session: Session, clock: MovingClock
) -> None:
    pull = sleeping_pull(session, 30)
    scenario = Scenario(title="Checkout", steps=[{"action": "Pay", "expected": "Paid"}] * 2)
    session.add(scenario)
    session.flush()
    session.add(
        ScenarioAttachment(pull_request_id=pull.id, scenario_id=scenario.id, attached_by="x")
    )
    session.commit()
    environment = pull.environments[-1]

    clock.now = T0 + timedelta(minutes=5)
    token = csrf_token(member_client, f"/pulls/{pull.id}")
    session.refresh(environment)
    assert environment.status is EnvironmentStatus.SLEEPING  # opening the page only touches
    started = member_client.post(
        f"/pulls/{pull.id}/scenarios/{scenario.id}/runs", data={"csrf_token": token}
    )
    assert started.status_code == 302
    session.refresh(environment)
    assert environment.status is EnvironmentStatus.PROVISIONING
    assert environment.deploy_requested_at == clock.now
    kinds = session.scalars(select(Event.message).where(Event.kind == "waking")).all()
    assert kinds == ["#30 wakes (scenario run started by member)"]

    clock.now = T0 + timedelta(minutes=9)
    response = member_client.post(
        started.location, data={"csrf_token": token, "status": "pass", "note": ""}
    )
    assert response.status_code == 302
    session.refresh(environment)
    assert environment.last_activity_at == clock.now


def test_an_expired_pr_says_pullre_released_it_and_why(
    member_client: FlaskClient, session: Session, clock: MovingClock
) -> None:
    pull = add_pull(session, add_repository(session), 14, parked=True)
    session.add(
        Environment(
            pull_request_id=pull.id,
            status=EnvironmentStatus.RELEASED,
            queued_at=T0 - timedelta(days=4),
            released_at=T0 - timedelta(hours=1),
            release_reason="expired: untouched for 48 h",
        )
    )
    session.commit()
    page = page_of(member_client, pull)
    assert '<span class="badge">released by pullre</span>' in page
    assert "released by hand" not in page
    assert ": expired: untouched for 48 h." in page
    dashboard = member_client.get("/").get_data(as_text=True)
    assert ">released</span>" in dashboard
    assert "released by hand" not in dashboard
