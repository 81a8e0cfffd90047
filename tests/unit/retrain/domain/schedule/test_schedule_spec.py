"""Retraining schedules -> Prefect schedules: validation, cron strings, previews and DST.

Every run time here comes from Prefect 3.8.8's own scheduler code (via `preview`), so these
tests pin the DST policy documented in `retrain/domain/schedule/preview.py`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from retrain.domain.schedule.preview import PreviewRun, preview
from retrain.domain.schedule.spec import (
    ScheduleSpec,
    check_once_in_future,
    describe,
    skipped_months,
)
from retrain.domain.schedule.translate import to_prefect, to_prefect_schedule

# pyproject's filter names flows/tasks/synthetic; warnings from this package are errors too.
UTC = dt.timezone.utc
WAW = "Europe/Warsaw"
WARSAW = ZoneInfo(WAW)
NEW_YORK = ZoneInfo("America/New_York")


def spec(**fields) -> ScheduleSpec:
    return ScheduleSpec(**fields)


def runs_on(runs: list[PreviewRun], day: dt.date) -> list[PreviewRun]:
    return [run for run in runs if run.local.date() == day]


def at(zone: ZoneInfo, *args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=zone)


def dates(runs: list[PreviewRun]) -> list[dt.date]:
    return [run.local.date() for run in runs]


# --- Each type: cron string, Prefect objects, preview -----------------------------------------


@pytest.mark.parametrize(
    ("fields", "cron", "zone"),
    [
        ({"type": "hourly", "minute": 45}, "45 * * * *", "UTC"),
        ({"type": "daily", "time": "09:05"}, "5 9 * * *", WAW),
        ({"type": "weekly", "time": "09:00", "day_of_week": 0}, "0 9 * * 1", WAW),
        ({"type": "weekly", "time": "09:00", "day_of_week": 5}, "0 9 * * 6", WAW),
        ({"type": "weekly", "time": "09:00", "day_of_week": 6}, "0 9 * * 0", WAW),
        ({"type": "monthly", "time": "02:00", "day_of_month": 15}, "0 2 15 * *", WAW),
        ({"type": "monthly", "time": "23:59", "last_day_of_month": True}, "59 23 L * *", WAW),
    ],
)
def test_recurring_types_translate_to_seed_cron_patterns(fields, cron, zone):
    s = spec(timezone="Europe/Warsaw", **fields)
    assert to_prefect(s, "retrain") == {
        "cron": cron,
        "timezone": zone,
        "day_or": True,
        "slug": "retrain",
        "active": True,
    }
    schedule = to_prefect_schedule(s)
    assert type(schedule).__name__ == "CronSchedule"
    assert (schedule.cron, schedule.timezone, schedule.day_or) == (cron, zone, True)


def test_to_prefect_entry_is_what_prefect_deploy_builds_the_schedule_from():
    from prefect.cli.deploy._models import RawScheduleConfig
    from prefect.cli.deploy._schedules import _schedule_config_to_deployment_schedule
    from prefect.client.schemas.actions import DeploymentScheduleCreate

    for s in [
        spec(type="daily", time="09:00", timezone="Europe/Warsaw"),
        spec(type="monthly", time="09:00", last_day_of_month=True, timezone="America/New_York"),
        spec(type="hourly", minute=15, timezone="Asia/Kolkata"),
        spec(type="once", at=dt.datetime(2027, 1, 15, 9, 30), timezone="Europe/Warsaw"),
    ]:
        entry = to_prefect(s, "retrain-product")
        RawScheduleConfig.model_validate(entry)  # the prefect.yaml shape, extra keys forbidden
        built = _schedule_config_to_deployment_schedule(entry)
        assert built["schedule"] == to_prefect_schedule(s)
        assert (built["slug"], built["active"]) == ("retrain-product", True)
        create = DeploymentScheduleCreate(schedule=to_prefect_schedule(s), slug="retrain-product")
        assert create.schedule == to_prefect_schedule(s)  # Prefect's normaliser leaves it alone


def test_weekly_sunday_runs_on_sundays_and_monday_on_mondays():
    now = at(WARSAW, 2027, 6, 1)  # a Tuesday
    sundays = preview(spec(type="weekly", time="09:00", day_of_week=6, timezone=WAW), now, 3)
    mondays = preview(spec(type="weekly", time="09:00", day_of_week=0, timezone=WAW), now, 3)
    assert dates(sundays) == [dt.date(2027, 6, 6), dt.date(2027, 6, 13), dt.date(2027, 6, 20)]
    assert {r.local.weekday() for r in sundays} == {6}
    assert dates(mondays) == [dt.date(2027, 6, 7), dt.date(2027, 6, 14), dt.date(2027, 6, 21)]
    assert all(r.local.time() == dt.time(9, 0) for r in sundays + mondays)


def test_hourly_and_daily_previews_start_at_now_inclusive():
    now = at(WARSAW, 2027, 6, 1, 10, 30)
    hourly = preview(spec(type="hourly", minute=30, timezone="Europe/Warsaw"), now, 3)
    assert [r.local for r in hourly] == [at(WARSAW, 2027, 6, 1, h, 30) for h in (10, 11, 12)]
    daily = preview(spec(type="daily", time="10:29", timezone="Europe/Warsaw"), now, 2)
    assert [r.local for r in daily] == [at(WARSAW, 2027, 6, d, 10, 29) for d in (2, 3)]
    assert preview(spec(type="daily", time="10:29"), now, 0) == []


def test_hourly_keeps_the_local_minute_in_half_hour_zones():
    s = spec(type="hourly", minute=15, timezone="Asia/Kolkata")  # UTC+5:30
    assert to_prefect(s, "x")["cron"] == "45 * * * *"
    runs = preview(s, dt.datetime(2027, 6, 1, tzinfo=UTC), 4)
    assert {r.local.minute for r in runs} == {15}


def test_hourly_in_a_zone_with_half_hour_dst_stays_on_its_own_clock():
    # Lord Howe moves its clocks by 30 minutes: no single UTC minute fits both offsets.
    s = spec(type="hourly", minute=0, timezone="Australia/Lord_Howe")
    assert to_prefect(s, "x")["timezone"] == "Australia/Lord_Howe"
    assert to_prefect(s, "x")["cron"] == "0 * * * *"


def test_preview_utc_times_are_the_local_times_converted():
    for s in [
        spec(type="daily", time="02:30", timezone="Europe/Warsaw"),
        spec(type="hourly", minute=0, timezone="America/New_York"),
        spec(type="monthly", time="09:00", day_of_month=31, timezone="America/New_York"),
    ]:
        for run in preview(s, dt.datetime(2027, 3, 1, tzinfo=UTC), 40):
            assert run.local.tzinfo == ZoneInfo(s.timezone)
            assert run.utc.utcoffset() == dt.timedelta(0)
            assert run.local.astimezone(UTC) == run.utc


def test_preview_agrees_with_prefects_public_get_dates():
    from prefect.server.schemas.schedules import CronSchedule

    s = spec(type="daily", time="02:30", timezone="Europe/Warsaw")
    start = dt.datetime(2027, 3, 20, tzinfo=UTC)
    entry = to_prefect(s, "x")
    server = CronSchedule(cron=entry["cron"], timezone=entry["timezone"], day_or=entry["day_or"])
    public = asyncio.run(server.get_dates(n=15, start=start))
    assert [r.utc for r in preview(s, start, 15)] == [d.astimezone(UTC) for d in public]


def test_preview_never_lists_a_run_before_now():
    # Asked from 01:45 CET on 2027-03-28, inside the 30 minutes after the 02:30 schedule's
    # early run, Prefect's cron code returns that already-past run (00:30 UTC) first.
    from prefect.server.schemas.schedules import CronSchedule

    now = dt.datetime(2027, 3, 28, 0, 45, tzinfo=UTC)
    server = CronSchedule(cron="30 2 * * *", timezone="Europe/Warsaw")
    assert [d.astimezone(UTC) for d in server._get_dates_generator(n=1, start=now)] == [
        dt.datetime(2027, 3, 28, 0, 30, tzinfo=UTC)
    ]
    runs = preview(spec(type="daily", time="02:30", timezone="Europe/Warsaw"), now, 2)
    assert [r.local for r in runs] == [at(WARSAW, 2027, 3, d, 2, 30) for d in (29, 30)]


# --- Monthly: short months, leap years, last day ----------------------------------------------


def test_monthly_day_31_skips_thirty_day_months_and_february():
    s = spec(type="monthly", time="09:00", day_of_month=31, timezone="Europe/Warsaw")
    runs = preview(s, at(WARSAW, 2027, 1, 1), 7)
    assert [r.local.date() for r in runs] == [
        dt.date(2027, 1, 31),
        dt.date(2027, 3, 31),
        dt.date(2027, 5, 31),
        dt.date(2027, 7, 31),
        dt.date(2027, 8, 31),
        dt.date(2027, 10, 31),
        dt.date(2027, 12, 31),
    ]
    assert skipped_months(s) == ["February", "April", "June", "September", "November"]
    assert skipped_months(spec(type="monthly", time="09:00", day_of_month=30)) == ["February"]
    assert skipped_months(spec(type="monthly", time="09:00", day_of_month=28)) == []
    assert skipped_months(spec(type="monthly", time="09:00", last_day_of_month=True)) == []


def test_monthly_day_29_runs_in_february_only_in_leap_years():
    s = spec(type="monthly", time="09:00", day_of_month=29, timezone="Europe/Warsaw")
    leap = preview(s, at(WARSAW, 2028, 1, 1), 3)
    common = preview(s, at(WARSAW, 2027, 1, 1), 3)
    assert dates(leap) == [dt.date(2028, 1, 29), dt.date(2028, 2, 29), dt.date(2028, 3, 29)]
    assert dates(common) == [dt.date(2027, 1, 29), dt.date(2027, 3, 29), dt.date(2027, 4, 29)]
    assert skipped_months(s) == ["February (non-leap years)"]


@pytest.mark.parametrize(("year", "february"), [(2027, 28), (2028, 29)])
def test_last_day_of_month_preview(year, february):
    s = spec(type="monthly", time="09:00", last_day_of_month=True, timezone="Europe/Warsaw")
    runs = preview(s, at(WARSAW, year, 1, 1), 4)
    assert [r.local.date() for r in runs] == [
        dt.date(year, 1, 31),
        dt.date(year, 2, february),
        dt.date(year, 3, 31),
        dt.date(year, 4, 30),
    ]
    assert all(r.local.time() == dt.time(9, 0) for r in runs)


# --- Once ----------------------------------------------------------------------------------------


def test_once_is_a_single_rrule_in_the_local_zone():
    s = spec(type="once", at=dt.datetime(2027, 1, 15, 9, 30), timezone="Europe/Warsaw")
    assert to_prefect(s, "one-off") == {
        "rrule": "DTSTART:20270115T093000\nRRULE:FREQ=DAILY;COUNT=1",
        "timezone": "Europe/Warsaw",
        "slug": "one-off",
        "active": True,
    }
    assert type(to_prefect_schedule(s)).__name__ == "RRuleSchedule"
    runs = preview(s, at(WARSAW, 2027, 1, 1), 5)
    assert [(r.local, r.note) for r in runs] == [(at(WARSAW, 2027, 1, 15, 9, 30), None)]
    assert preview(s, at(WARSAW, 2027, 1, 15, 9, 31), 5) == []


def test_once_aware_datetime_is_converted_to_the_zone():
    s = spec(type="once", at=dt.datetime(2027, 1, 15, 8, 30, tzinfo=UTC), timezone="Europe/Warsaw")
    assert s.at == at(WARSAW, 2027, 1, 15, 9, 30)
    assert s.at.tzinfo == WARSAW
    assert describe(s) == "Once on 2027-01-15 at 09:30 (Europe/Warsaw)"


def test_once_at_the_second_of_a_repeated_hour_is_written_in_utc():
    # 02:30 happens twice in Warsaw on 2027-10-31; Prefect reads a local DTSTART as the first.
    second = spec(type="once", at=dt.datetime(2027, 10, 31, 2, 30, fold=1), timezone=WAW)
    assert to_prefect(second, "x")["rrule"] == "DTSTART:20271031T013000\nRRULE:FREQ=DAILY;COUNT=1"
    assert to_prefect(second, "x")["timezone"] == "UTC"
    [run] = preview(second, at(WARSAW, 2027, 10, 1), 5)
    assert run.utc == dt.datetime(2027, 10, 31, 1, 30, tzinfo=UTC)
    assert "runs once, at the second (CET, UTC+1)" in run.note

    first = spec(type="once", at=dt.datetime(2027, 10, 31, 2, 30), timezone="Europe/Warsaw")
    assert to_prefect(first, "x")["timezone"] == "Europe/Warsaw"
    [run] = preview(first, at(WARSAW, 2027, 10, 1), 5)
    assert run.utc == dt.datetime(2027, 10, 31, 0, 30, tzinfo=UTC)


def test_spec_survives_a_json_round_trip():
    for s in [
        spec(type="once", at=dt.datetime(2027, 10, 31, 2, 30, fold=1), timezone=WAW),
        spec(type="monthly", time="09:00", last_day_of_month=True, timezone=WAW),
    ]:
        again = ScheduleSpec.model_validate_json(s.model_dump_json())
        assert to_prefect(again, "x") == to_prefect(s, "x")
    assert set(ScheduleSpec.model_json_schema()["properties"]) == set(ScheduleSpec.model_fields)


def test_once_in_the_past_is_refused_with_time_and_zone():
    s = spec(type="once", at=dt.datetime(2027, 1, 15, 9, 30), timezone="Europe/Warsaw")
    check_once_in_future(s, dt.datetime(2027, 1, 15, 8, 29, tzinfo=UTC))  # 09:29 in Warsaw
    with pytest.raises(ValueError, match=r"2027-01-15 09:30 \(Europe/Warsaw\) is not in the fut"):
        check_once_in_future(s, dt.datetime(2027, 1, 15, 8, 30, tzinfo=UTC))
    with pytest.raises(ValueError, match="timezone-aware"):
        check_once_in_future(s, dt.datetime(2027, 1, 1))
    check_once_in_future(spec(type="daily", time="09:00"), dt.datetime(2030, 1, 1, tzinfo=UTC))


def test_once_wall_time_skipped_by_spring_forward_is_refused():
    with pytest.raises(ValidationError, match=r"02:30 does not exist in Europe/Warsaw.*02:00→03"):
        spec(type="once", at=dt.datetime(2027, 3, 28, 2, 30), timezone="Europe/Warsaw")


# --- Invalid input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"type": "daily", "time": "09:00", "timezone": "Europe/Warsau"}, "'Europe/Warsau'"),
        ({"type": "daily", "time": "09:00", "timezone": "+02:00"}, r"unknown timezone '\+02:00'"),
        ({"type": "hourly", "minute": 17}, r"minute must be one of 0, 15, 30, 45 \(got 17\)"),
        ({"type": "monthly", "time": "09:00", "day_of_month": 32}, "day_of_month"),
        ({"type": "monthly", "time": "09:00", "day_of_month": 0}, "day_of_month"),
        ({"type": "weekly", "time": "09:00", "day_of_week": 7}, "day_of_week"),
        (
            {"type": "monthly", "time": "09:00", "day_of_month": 31, "last_day_of_month": True},
            "mutually exclusive",
        ),
        ({"type": "monthly", "time": "09:00"}, "needs day_of_month or last_day_of_month"),
        ({"type": "daily", "time": "09:00", "minute": 15}, "minute does not apply to a daily"),
        ({"type": "hourly", "minute": 0, "time": "09:00"}, "time does not apply to an hourly"),
        ({"type": "daily", "time": "09:00", "day_of_week": 1}, "day_of_week does not apply"),
        ({"type": "weekly", "time": "09:00", "day_of_week": 1, "day_of_month": 3}, "day_of_month "),
        ({"type": "daily", "time": "09:00", "last_day_of_month": True}, "last_day_of_month does"),
        ({"type": "daily", "time": "09:00", "at": "2027-01-01T09:00"}, "at does not apply"),
        ({"type": "once", "at": "2027-01-01T09:00", "time": "09:00"}, "time does not apply"),
        ({"type": "daily", "time": "25:00"}, "time must be HH:MM"),
        ({"type": "daily", "time": "9:00"}, "time must be HH:MM"),
        ({"type": "daily", "time": "09:00\n"}, "time must be HH:MM"),
        ({"type": "daily", "time": "09:60"}, "time must be HH:MM"),
        ({"type": "daily"}, "a daily schedule needs time"),
        ({"type": "weekly", "time": "09:00"}, "a weekly schedule needs day_of_week"),
        ({"type": "once"}, "a once schedule needs at"),
        ({"type": "once", "at": "2027-01-01T09:00:30"}, "whole minute"),
        ({"type": "yearly", "time": "09:00"}, "type"),
        ({"type": "daily", "time": "09:00", "cron": "* * * * *"}, "cron"),
    ],
)
def test_invalid_specs_are_refused_naming_the_problem(fields, message):
    with pytest.raises(ValueError, match=message):
        ScheduleSpec(**fields)


def test_invalid_preview_arguments():
    s = spec(type="daily", time="09:00")
    with pytest.raises(ValueError, match="timezone-aware"):
        preview(s, dt.datetime(2027, 1, 1))
    with pytest.raises(ValueError, match="count"):
        preview(s, dt.datetime(2027, 1, 1, tzinfo=UTC), -1)
    with pytest.raises(ValueError, match="slug"):
        to_prefect(s, "")


# --- Descriptions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        ({"type": "monthly", "time": "09:00", "day_of_month": 15}, "Monthly on the 15th at 09:00"),
        ({"type": "monthly", "time": "09:00", "day_of_month": 1}, "Monthly on the 1st at 09:00"),
        ({"type": "monthly", "time": "09:00", "day_of_month": 22}, "Monthly on the 22nd at 09:00"),
        ({"type": "monthly", "time": "09:00", "day_of_month": 13}, "Monthly on the 13th at 09:00"),
        ({"type": "monthly", "time": "09:00", "last_day_of_month": True}, "Monthly on the last day"
         " at 09:00"),
        ({"type": "weekly", "time": "09:00", "day_of_week": 6}, "Weekly on Sunday at 09:00"),
        ({"type": "daily", "time": "02:30"}, "Daily at 02:30"),
        ({"type": "hourly", "minute": 0}, "Hourly at :00"),
    ],
)
def test_describe(fields, text):
    assert describe(spec(timezone=WAW, **fields)) == f"{text} (Europe/Warsaw)"


def test_describe_flags_days_some_months_lack():
    thirtieth = spec(type="monthly", time="09:00", day_of_month=30, timezone=WAW)
    assert describe(thirtieth).endswith("on the 30th at 09:00 (Europe/Warsaw); skipped in February")


# --- DST: daily 02:30 fires exactly once on change days -----------------------------------------

DAILY_DST_CASES = [
    # zone, change day, local run time, UTC run time, note (None: 02:30 is untouched that day)
    (
        "Europe/Warsaw",
        dt.date(2027, 3, 28),
        "01:30 CET",
        dt.datetime(2027, 3, 28, 0, 30, tzinfo=UTC),
        "clocks go forward 02:00→03:00 in Europe/Warsaw on 2027-03-28: 02:30 does not exist; "
        "runs at 01:30 (CET, UTC+1)",
    ),
    (
        "Europe/Warsaw",
        dt.date(2027, 10, 31),
        "02:30 CEST",
        dt.datetime(2027, 10, 31, 0, 30, tzinfo=UTC),
        "02:30 happens twice in Europe/Warsaw (clocks go back 03:00→02:00); "
        "runs once, at the first (CEST, UTC+2)",
    ),
    (
        "America/New_York",
        dt.date(2027, 3, 14),
        "01:30 EST",
        dt.datetime(2027, 3, 14, 6, 30, tzinfo=UTC),
        "clocks go forward 02:00→03:00 in America/New_York on 2027-03-14: 02:30 does not exist; "
        "runs at 01:30 (EST, UTC-5)",
    ),
    # New York turns 02:00 EDT back to 01:00 EST: 01:00-02:00 repeats, 02:30 happens once.
    (
        "America/New_York",
        dt.date(2027, 11, 7),
        "02:30 EST",
        dt.datetime(2027, 11, 7, 7, 30, tzinfo=UTC),
        None,
    ),
]


@pytest.mark.parametrize(("zone", "day", "local", "utc", "note"), DAILY_DST_CASES)
def test_daily_0230_runs_exactly_once_on_dst_change_days(zone, day, local, utc, note):
    s = spec(type="daily", time="02:30", timezone=zone)
    runs = preview(s, dt.datetime.combine(day - dt.timedelta(days=2), dt.time(), ZoneInfo(zone)), 6)
    [run] = runs_on(runs, day)
    assert run.local.strftime("%H:%M %Z") == local
    assert run.utc == utc
    assert run.note == note
    # the days either side run at 02:30 on the clock, without notes
    others = [r for r in runs if r.local.date() != day]
    assert all(r.local.time() == dt.time(2, 30) and r.note is None for r in others)


@pytest.mark.parametrize(("zone", "day", "local", "utc", "note"), DAILY_DST_CASES)
def test_daily_0230_gives_one_instant_whenever_the_scheduler_looks(zone, day, local, utc, note):
    # Prefect's scheduler asks for dates from "now" whenever it tops a deployment up. Whatever
    # that moment (every 15 minutes from the day before through the change), the change day's
    # run is the same instant, so its idempotency key never lets a second run in.
    s = spec(type="daily", time="02:30", timezone=zone)
    zone_info = ZoneInfo(zone)
    start = dt.datetime.combine(day - dt.timedelta(days=1), dt.time(), zone_info).astimezone(UTC)
    end = dt.datetime.combine(day, dt.time(4), zone_info).astimezone(UTC)
    seen: set[dt.datetime] = set()
    while start < end:
        seen |= {r.utc for r in runs_on(preview(s, start, 2), day)}
        start += dt.timedelta(minutes=15)
    assert seen == {utc}


def test_new_york_0130_on_fall_back_runs_once_at_the_first():
    s = spec(type="daily", time="01:30", timezone="America/New_York")
    [run] = runs_on(preview(s, at(NEW_YORK, 2027, 11, 6), 3), dt.date(2027, 11, 7))
    assert run.utc == dt.datetime(2027, 11, 7, 5, 30, tzinfo=UTC)  # 01:30 EDT
    assert run.note == (
        "01:30 happens twice in America/New_York (clocks go back 02:00→01:00); "
        "runs once, at the first (EDT, UTC-4)"
    )


def test_midnight_change_moves_the_skipped_run_to_the_evening_before():
    # Havana springs forward 00:00→01:00: the 00:30 run comes at 23:30 the day before.
    s = spec(type="daily", time="00:30", timezone="America/Havana")
    runs = preview(s, dt.datetime(2027, 3, 12, 12, tzinfo=UTC), 3)
    havana = ZoneInfo("America/Havana")
    assert [r.local for r in runs] == [
        at(havana, 2027, 3, 13, 0, 30),
        at(havana, 2027, 3, 13, 23, 30),
        at(havana, 2027, 3, 15, 0, 30),
    ]
    assert runs[1].note == (
        "clocks go forward 00:00→01:00 in America/Havana on 2027-03-14: 00:30 does not exist; "
        "runs at 23:30 on 2027-03-13 (CST, UTC-5)"
    )


# --- DST: hourly runs every elapsed hour ----------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "day", "expected"),
    [
        ("Europe/Warsaw", dt.date(2027, 3, 28), 23),
        ("Europe/Warsaw", dt.date(2027, 10, 31), 25),
        ("America/New_York", dt.date(2027, 3, 14), 23),
        ("America/New_York", dt.date(2027, 11, 7), 25),
    ],
)
def test_hourly_on_dst_days_runs_every_elapsed_hour(zone, day, expected):
    s = spec(type="hourly", minute=30, timezone=zone)
    runs = runs_on(preview(s, dt.datetime.combine(day, dt.time(), ZoneInfo(zone)), 30), day)
    assert len(runs) == expected
    instants = [r.utc for r in runs]
    assert len(set(instants)) == len(instants)
    assert all(b - a == dt.timedelta(hours=1) for a, b in zip(instants, instants[1:]))
    assert {r.local.minute for r in runs} == {30}
    noted = [r for r in runs if r.note]
    if expected == 25:  # both readings of the repeated hour run, each says which it is
        assert [r.note.rsplit("this is the ", 1)[1][:6] for r in noted] == ["first ", "second"]
    else:  # the run after the jump says the skipped wall time does not exist
        [after_jump] = noted
        assert "02:30 does not exist" in after_jump.note
        assert after_jump.local.strftime("%H:%M") == "03:30"
