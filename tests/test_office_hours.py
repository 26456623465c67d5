"""Office-hours time math in named zones: daylight saving both ways, midnight, weekday edges."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from pullre.models import Schedule
from pullre.policies import office_hours

WEEKDAYS = [1, 2, 3, 4, 5]
EVERY_DAY = [1, 2, 3, 4, 5, 6, 7]


def schedule(zone: str, days: list[int], opens: str, closes: str, name: str = "office") -> Schedule:
    return Schedule(
        name=name,
        time_zone=zone,
        days=days,
        opens_at=time.fromisoformat(opens),
        closes_at=time.fromisoformat(closes),
    )


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


BERLIN_OFFICE = schedule("Europe/Berlin", WEEKDAYS, "09:00", "18:00")
NEW_YORK_OFFICE = schedule("America/New_York", WEEKDAYS, "09:00", "17:00")


def test_berlin_office_opens_at_nine_local_on_both_sides_of_spring_forward() -> None:
    # Friday 2026-03-27 is still CET (+1); Monday 2026-03-30 is CEST (+2).
    assert not office_hours.is_open(BERLIN_OFFICE, utc("2026-03-27 07:59:59"))
    assert office_hours.is_open(BERLIN_OFFICE, utc("2026-03-27 08:00"))
    assert not office_hours.is_open(BERLIN_OFFICE, utc("2026-03-30 06:59:59"))
    assert office_hours.is_open(BERLIN_OFFICE, utc("2026-03-30 07:00"))
    # Closing is excluded: 18:00 CEST is 16:00 UTC.
    assert office_hours.is_open(BERLIN_OFFICE, utc("2026-03-30 15:59:59"))
    assert not office_hours.is_open(BERLIN_OFFICE, utc("2026-03-30 16:00"))


def test_next_change_across_the_spring_forward_weekend() -> None:
    friday_closing = utc("2026-03-27 17:00")  # 18:00 CET
    assert office_hours.next_change(BERLIN_OFFICE, utc("2026-03-27 12:00")) == friday_closing
    # The weekend is one gap, and Monday's 09:00 is an hour earlier in UTC than Friday's.
    assert office_hours.next_change(BERLIN_OFFICE, friday_closing) == utc("2026-03-30 07:00")
    assert office_hours.next_change(BERLIN_OFFICE, utc("2026-03-29 01:30")) == utc(
        "2026-03-30 07:00"
    )


def test_next_change_across_the_fall_back_weekend() -> None:
    # Friday 2026-10-23 is CEST (+2); Monday 2026-10-26 is CET (+1).
    assert office_hours.next_change(BERLIN_OFFICE, utc("2026-10-23 09:00")) == utc(
        "2026-10-23 16:00"
    )
    assert office_hours.next_change(BERLIN_OFFICE, utc("2026-10-23 16:00")) == utc(
        "2026-10-26 08:00"
    )
    assert not office_hours.is_open(BERLIN_OFFICE, utc("2026-10-26 07:30"))
    assert office_hours.is_open(BERLIN_OFFICE, utc("2026-10-26 08:00"))


def test_new_york_office_follows_its_own_daylight_saving_dates() -> None:
    # The US springs forward on 2026-03-08, three weeks before Europe.
    assert office_hours.next_change(NEW_YORK_OFFICE, utc("2026-03-06 22:00")) == utc(
        "2026-03-09 13:00"
    )
    assert office_hours.is_open(NEW_YORK_OFFICE, utc("2026-03-06 14:00"))  # 09:00 EST
    assert not office_hours.is_open(NEW_YORK_OFFICE, utc("2026-03-09 12:30"))  # 08:30 EDT
    # ... and falls back on 2026-11-01.
    assert office_hours.next_change(NEW_YORK_OFFICE, utc("2026-10-30 15:00")) == utc(
        "2026-10-30 21:00"
    )
    assert office_hours.next_change(NEW_YORK_OFFICE, utc("2026-10-30 21:00")) == utc(
        "2026-11-02 14:00"
    )


def test_opening_time_that_does_not_exist_opens_when_the_clocks_jump() -> None:
    early = schedule("Europe/Berlin", EVERY_DAY, "02:30", "05:00")
    # On 2026-03-29 the wall clock jumps from 02:00 CET (01:00 UTC) to 03:00 CEST.
    assert not office_hours.is_open(early, utc("2026-03-29 00:59:59"))
    assert office_hours.is_open(early, utc("2026-03-29 01:00"))
    assert office_hours.next_change(early, utc("2026-03-28 12:00")) == utc("2026-03-29 01:00")
    assert office_hours.next_change(early, utc("2026-03-29 01:00")) == utc("2026-03-29 03:00")
    # The day before and after, 02:30 exists and means what it says.
    assert office_hours.next_change(early, utc("2026-03-27 12:00")) == utc("2026-03-28 01:30")
    assert office_hours.next_change(early, utc("2026-03-29 12:00")) == utc("2026-03-30 00:30")


def test_closing_time_that_does_not_exist_closes_when_the_clocks_jump() -> None:
    late = schedule("Europe/Berlin", [6], "22:00", "02:30")  # Saturday night into Sunday
    assert office_hours.is_open(late, utc("2026-03-29 00:59:59"))
    assert not office_hours.is_open(late, utc("2026-03-29 01:00"))
    assert office_hours.next_change(late, utc("2026-03-28 23:00")) == utc("2026-03-29 01:00")


def test_window_inside_the_gap_is_empty_that_day() -> None:
    lost = schedule("Europe/Berlin", [7], "02:10", "02:50")
    for minute in range(0, 180, 5):
        assert not office_hours.is_open(lost, utc("2026-03-29 00:00") + timedelta(minutes=minute))
    # It is skipped, not a change; the next Sunday's window is the next change.
    assert office_hours.next_change(lost, utc("2026-03-28 12:00")) == utc("2026-04-05 00:10")


def test_opening_time_that_happens_twice_opens_once_at_the_first() -> None:
    early = schedule("Europe/Berlin", EVERY_DAY, "02:30", "04:00")
    # 2026-10-25: 02:30 CEST is 00:30 UTC; at 01:00 UTC the clock falls back to 02:00 CET.
    assert not office_hours.is_open(early, utc("2026-10-25 00:29:59"))
    assert office_hours.is_open(early, utc("2026-10-25 00:30"))
    # 02:15 CET: the wall clock is before 02:30 again, but the window stays open.
    assert office_hours.is_open(early, utc("2026-10-25 01:15"))
    assert office_hours.next_change(early, utc("2026-10-25 00:30")) == utc("2026-10-25 03:00")


def test_closing_time_that_happens_twice_closes_at_the_first() -> None:
    late = schedule("Europe/Berlin", [6], "22:00", "02:30")
    assert office_hours.next_change(late, utc("2026-10-24 21:00")) == utc("2026-10-25 00:30")
    assert not office_hours.is_open(late, utc("2026-10-25 01:30"))  # the second 02:30 CET


def test_window_across_midnight_is_open_on_a_day_not_in_days() -> None:
    night = schedule("Europe/Berlin", [5], "22:00", "06:00")  # Friday 22:00 → Saturday 06:00
    # 2026-06-05 is a Friday; Berlin is +2 in June.
    assert not office_hours.is_open(night, utc("2026-06-05 19:59"))
    assert office_hours.is_open(night, utc("2026-06-05 20:00"))
    assert office_hours.is_open(night, utc("2026-06-06 01:00"))  # Saturday 03:00
    assert not office_hours.is_open(night, utc("2026-06-06 04:00"))  # Saturday 06:00
    assert not office_hours.is_open(night, utc("2026-06-06 20:30"))  # Saturday 22:30
    assert office_hours.next_change(night, utc("2026-06-05 10:00")) == utc("2026-06-05 20:00")
    assert office_hours.next_change(night, utc("2026-06-05 20:00")) == utc("2026-06-06 04:00")
    assert office_hours.next_change(night, utc("2026-06-06 04:00")) == utc("2026-06-12 20:00")


def test_sunday_night_window_wraps_into_the_next_week() -> None:
    sunday = schedule("UTC", [7], "23:00", "01:00")
    assert office_hours.is_open(sunday, utc("2026-06-07 23:30"))  # Sunday
    assert office_hours.is_open(sunday, utc("2026-06-08 00:30"))  # Monday
    assert not office_hours.is_open(sunday, utc("2026-06-06 23:30"))  # Saturday
    assert office_hours.next_change(sunday, utc("2026-06-08 02:00")) == utc("2026-06-14 23:00")


def test_weekday_edges_and_the_weekend_gap() -> None:
    office = schedule("UTC", WEEKDAYS, "09:00", "18:00")
    assert office_hours.is_open(office, utc("2026-06-05 17:59:59"))  # Friday
    assert not office_hours.is_open(office, utc("2026-06-06 12:00"))  # Saturday
    assert not office_hours.is_open(office, utc("2026-06-07 12:00"))  # Sunday
    assert office_hours.next_change(office, utc("2026-06-05 18:00")) == utc("2026-06-08 09:00")
    assert office_hours.side(office, utc("2026-06-08 09:00")) == office_hours.OPEN
    assert office_hours.side(office, utc("2026-06-07 09:00")) == office_hours.CLOSED


def test_schedules_that_never_change() -> None:
    never = schedule("Europe/Berlin", [], "09:00", "18:00")
    assert not office_hours.is_open(never, utc("2026-06-03 10:00"))
    assert office_hours.next_change(never, utc("2026-06-03 10:00")) is None
    # Windows that meet end to end are one: open all week, no change to report.
    always = schedule("Europe/Berlin", EVERY_DAY, "09:00", "09:00")
    for moment in ("2026-03-29 00:30", "2026-03-29 07:00", "2026-10-25 00:59", "2026-10-25 01:01"):
        assert office_hours.is_open(always, utc(moment))
        assert office_hours.next_change(always, utc(moment)) is None
    # Six such days close once a week.
    six = schedule("UTC", [1, 2, 3, 4, 5, 6], "00:00", "00:00")
    assert office_hours.next_change(six, utc("2026-06-08 12:00")) == utc("2026-06-14 00:00")


@pytest.mark.parametrize(
    "sched",
    [
        BERLIN_OFFICE,
        NEW_YORK_OFFICE,
        schedule("Europe/Berlin", EVERY_DAY, "02:30", "02:15"),
        schedule("America/New_York", [6, 7, 1], "01:30", "01:30"),
        schedule("Australia/Lord_Howe", [2, 4, 7], "01:45", "02:15"),
    ],
    ids=["berlin", "new-york", "berlin-night", "ny-24h", "lord-howe-half-hour-dst"],
)
def test_next_change_and_is_open_agree_through_both_changes(sched: Schedule) -> None:
    """Walking change to change over the year's DST weeks: each edge flips and nothing between."""
    for start in (utc("2026-03-01 00:00"), utc("2026-09-26 00:00")):
        moment, end = start, start + timedelta(days=40)
        while moment < end:
            state = office_hours.is_open(sched, moment)
            change = office_hours.next_change(sched, moment)
            assert change is not None
            assert change > moment
            assert office_hours.is_open(sched, change) is not state
            for probe in (change - timedelta(seconds=1), moment + (change - moment) / 2):
                assert office_hours.is_open(sched, probe) is state
            moment = change


def test_naive_moment_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        office_hours.is_open(BERLIN_OFFICE, datetime(2026, 6, 1, 12, 0))


def dashed(sched: Schedule) -> str:
    """describe() with its en dashes as hyphens, so the expected texts stay plain ASCII."""
    return office_hours.describe(sched).replace(office_hours.DASH, "-")


def test_describe() -> None:
    assert "\N{EN DASH}" in office_hours.describe(BERLIN_OFFICE)
    assert dashed(BERLIN_OFFICE) == "Mon-Fri 09:00-18:00 (Europe/Berlin)"
    assert dashed(schedule("UTC", [5], "22:00", "06:00")) == "Fri 22:00-06:00 next day (UTC)"
    assert (
        dashed(schedule("UTC", [7, 1, 3, 2, 6], "08:30", "12:00"))
        == "Mon-Wed, Sat, Sun 08:30-12:00 (UTC)"
    )
    assert dashed(schedule("UTC", EVERY_DAY, "00:00", "00:00")).startswith(
        "every day 00:00-00:00 next day"
    )
    assert dashed(schedule("UTC", [], "09:00", "17:00")).startswith("never open")


def test_format_in_zone_states_the_zone() -> None:
    assert (
        office_hours.format_in_zone(BERLIN_OFFICE, utc("2026-03-30 07:00"))
        == "Mon 2026-03-30 09:00 CEST (Europe/Berlin)"
    )
    assert (
        office_hours.format_in_zone(BERLIN_OFFICE, utc("2026-03-27 08:00"))
        == "Fri 2026-03-27 09:00 CET (Europe/Berlin)"
    )


@pytest.mark.parametrize("good", ["Europe/Berlin", "America/New_York", "UTC", "Asia/Kolkata"])
def test_known_time_zones_pass(good: str) -> None:
    assert office_hours.time_zone_error(good) is None
    assert good in office_hours.known_time_zones()


@pytest.mark.parametrize(
    "bad", ["Europe/Berln", "europe/berlin", "", " Europe/Berlin", "../../etc/passwd", "CEST"]
)
def test_unknown_time_zones_are_named_in_the_error(bad: str) -> None:
    error = office_hours.time_zone_error(bad)
    assert error is not None
    assert "IANA" in error
    if bad and bad.strip() == bad:
        assert repr(bad) in error
