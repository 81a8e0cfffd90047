"""Retraining schedules (seed 003's TrainingSchedule) translated into Prefect deployment schedules.

Pure and typed: no Prefect API calls, no database. `ScheduleSpec` is the user's schedule;
`to_prefect` gives the entry for `prefect.yaml` / `deployment.apply()`, `to_prefect_schedule`
the client schema object for `client.create_deployment_schedules`, and `preview` the next run
times computed by the same server-side code the Prefect scheduler runs
(`prefect.server.schemas.schedules.*._get_dates_generator`, which
`prefect.server.models.deployments._generate_scheduled_flow_runs` calls), so a preview never
disagrees with what will fire.

Translation (seed 003 cron patterns; `day_or` is always True, as in cron):
  once     RRule `DTSTART:<local wall time>` + `RRULE:FREQ=DAILY;COUNT=1` in the spec's zone.
           If Prefect would read that wall time as a different instant (the second
           occurrence of a repeated hour), the DTSTART is written in UTC with zone "UTC".
  hourly   `MM * * * *` evaluated in **UTC** (minute shifted for zones whose offset is not
           a whole number of hours), see the DST policy below. Zones whose offset changes
           by other than whole hours (Australia/Lord_Howe) keep a cron in their own zone.
  daily    `MM HH * * *` in the spec's zone.
  weekly   `MM HH * * D`; seed 003 counts 0=Monday..6=Sunday, cron 1=Monday..0=Sunday.
  monthly  `MM HH DD * *`; months without day DD are skipped (see `skipped_months`).
           Last day of the month: `MM HH L * *`. Prefect 3.8.8 vendors croniter
           (`prefect._vendor.croniter`), which accepts `L` in the day-of-month field;
           it fires on Jan 31, Feb 28 (29 in leap years), Mar 31, Apr 30, ...

DST policy (documented behaviour, measured from Prefect 3.8.8's own implementation with the
scheduler's start time moved minute by minute across each change; the tests pin it):
  A daily/weekly/monthly schedule fires exactly once on a DST-change day, at the same
  instant whenever the scheduler computes it, so its idempotency key admits no second run.
  * Spring forward, the wall time does not exist: the run comes **early**, by the size of
    the jump (the wall time read at the summer offset). Daily 02:30 Europe/Warsaw on
    2027-03-28 runs at 01:30 CET (00:30 UTC); America/New_York on 2027-03-14 at 01:30 EST
    (06:30 UTC).
  * Fall back, the wall time happens twice: the run fires once, at the **first**
    occurrence (summer time). Daily 02:30 Europe/Warsaw on 2027-10-31 runs at 02:30 CEST
    (00:30 UTC), not again at 02:30 CET. New York's clocks go back 02:00→01:00, so 02:30
    on 2027-11-07 is not repeated there: it runs at 02:30 EST (07:30 UTC); a 01:30
    schedule runs once, at 01:30 EDT (05:30 UTC).
  * Zones whose clocks jump at midnight (America/Havana, America/Santiago, Asia/Beirut):
    a run in the skipped hour 00:00-01:00 comes at 23:xx the evening before, so that
    calendar day has two runs 23 hours apart and the change day none. One run per
    occurrence, none lost; `preview` notes it. Not corrected.
  * Asked from a start up to an hour after such an early run, Prefect returns that
    already-past run again; the scheduler drops it by its idempotency key, `preview` too.
  Hourly: Prefect's cron in a local zone fires on wall-clock hours, so on a fall-back day
  the repeated hour fires once (24 runs, a two-hour gap). We want a run every elapsed
  hour, so hourly schedules are a UTC cron: 23 runs on a spring-forward day, 25 on a
  fall-back day (02:30 CEST and 02:30 CET both run), never two at one instant, always at
  local minute MM.
  A once schedule given a naive wall time that does not exist is refused; an ambiguous one
  means the first occurrence unless `fold=1` (or an aware datetime) says otherwise.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

if TYPE_CHECKING:
    from prefect.client.schemas.schedules import CronSchedule, RRuleSchedule

ScheduleType = Literal["once", "hourly", "daily", "weekly", "monthly"]

HOURLY_MINUTES: tuple[int, ...] = (0, 15, 30, 45)
WEEKDAYS: tuple[str, ...] = (
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
)
MONTHS: tuple[str, ...] = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

# Which fields each schedule type needs and which it may carry; everything else is refused.
_REQUIRED: dict[str, tuple[str, ...]] = {
    "once": ("at",),
    "hourly": ("minute",),
    "daily": ("time",),
    "weekly": ("time", "day_of_week"),
    "monthly": ("time",),
}
_ALLOWED: dict[str, tuple[str, ...]] = {
    **_REQUIRED,
    "monthly": ("time", "day_of_month", "last_day_of_month"),
}
_TYPED_FIELDS = ("at", "minute", "time", "day_of_week", "day_of_month", "last_day_of_month")
_TIME_RE = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_UTC = dt.timezone.utc


@functools.lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _a(kind: str) -> str:
    return f"an {kind}" if kind == "hourly" else f"a {kind}"


class ScheduleSpec(BaseModel):
    """A registered model's retraining schedule, as seed 003's TrainingSchedule defines it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: ScheduleType = Field(description="once, hourly, daily, weekly or monthly.")
    timezone: str = Field(
        default="UTC",
        description="IANA time zone the wall times are in, e.g. Europe/Warsaw.",
    )
    at: dt.datetime | None = Field(
        default=None,
        description=(
            "once only: when to run. A naive value is a wall time in `timezone`; an aware "
            "one is converted to it. Must be on a whole minute."
        ),
    )
    minute: int | None = Field(
        default=None,
        description="hourly only: the minute past each hour, one of 0, 15, 30, 45.",
    )
    time: str | None = Field(
        default=None,
        description="daily, weekly, monthly: wall time of day as HH:MM, 24-hour clock.",
    )
    day_of_week: int | None = Field(
        default=None,
        ge=0,
        le=6,
        description="weekly only: 0=Monday ... 6=Sunday (seed 003 numbering).",
    )
    day_of_month: int | None = Field(
        default=None,
        ge=1,
        le=31,
        description="monthly only: day 1-31; months without that day are skipped.",
    )
    last_day_of_month: bool = Field(
        default=False,
        description="monthly only: run on each month's last day instead of day_of_month.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            known = value in _known_zones() and _zone(value) is not None
        except (ZoneInfoNotFoundError, ValueError):
            known = False
        if not known:
            raise ValueError(f"unknown timezone {value!r}: use an IANA name such as Europe/Warsaw")
        return value

    @field_validator("minute")
    @classmethod
    def _quarter_hour(cls, value: int | None) -> int | None:
        if value is not None and value not in HOURLY_MINUTES:
            allowed = ", ".join(str(m) for m in HOURLY_MINUTES)
            raise ValueError(f"minute must be one of {allowed} (got {value})")
        return value

    @field_validator("time")
    @classmethod
    def _wall_time(cls, value: str | None) -> str | None:
        if value is not None and not _TIME_RE.fullmatch(value):
            raise ValueError(f"time must be HH:MM on a 24-hour clock, 00:00-23:59 (got {value!r})")
        return value

    @field_validator("at")
    @classmethod
    def _localise_at(cls, value: dt.datetime | None, info: ValidationInfo) -> dt.datetime | None:
        tz_name = info.data.get("timezone")
        if value is None or tz_name is None:  # a bad timezone is reported on its own
            return value
        if value.second or value.microsecond:
            raise ValueError(f"at must be on a whole minute (got {value.isoformat()})")
        zone = _zone(tz_name)
        if value.tzinfo is not None:
            return value.astimezone(zone)
        if _in_gap(zone, value):
            before, after = _clock_change(zone, value)
            raise ValueError(
                f"at {value:%Y-%m-%d %H:%M} does not exist in {tz_name}: clocks go forward "
                f"{before:%H:%M}→{after:%H:%M} that day; give another time or an aware datetime"
            )
        return value.replace(tzinfo=zone)  # an ambiguous wall time keeps its fold (0: first)

    @model_validator(mode="after")
    def _fields_match_type(self) -> ScheduleSpec:
        for name in _TYPED_FIELDS:
            value = getattr(self, name)
            is_set = value is True if name == "last_day_of_month" else value is not None
            if is_set and name not in _ALLOWED[self.type]:
                users = [kind for kind, fields in _ALLOWED.items() if name in fields]
                raise ValueError(
                    f"{name} does not apply to {_a(self.type)} schedule (it is for: "
                    f"{', '.join(users)})"
                )
        for name in _REQUIRED[self.type]:
            if getattr(self, name) is None:
                raise ValueError(f"{_a(self.type)} schedule needs {name}")
        if self.type == "monthly":
            if self.last_day_of_month and self.day_of_month is not None:
                raise ValueError(
                    "day_of_month and last_day_of_month are mutually exclusive: give one"
                )
            if not self.last_day_of_month and self.day_of_month is None:
                raise ValueError("a monthly schedule needs day_of_month or last_day_of_month")
        return self

    @property
    def hour_minute(self) -> tuple[int, int]:
        """(hour, minute) of `time`; for hourly (0, minute); for once the wall time of `at`."""
        if self.time is not None:
            hour, minute = self.time.split(":")
            return int(hour), int(minute)
        if self.minute is not None:
            return 0, self.minute
        assert self.at is not None
        return self.at.hour, self.at.minute


class PreviewRun(BaseModel):
    """One upcoming run of a schedule, as the Prefect scheduler will create it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    local: dt.datetime = Field(description="Run time in the schedule's time zone.")
    utc: dt.datetime = Field(description="The same instant in UTC.")
    note: str | None = Field(
        default=None,
        description="What a DST change does to this run, if anything; otherwise None.",
    )


# --- Checks and descriptions ------------------------------------------------------------------


def check_once_in_future(spec: ScheduleSpec, now: dt.datetime) -> None:
    """Raise ValueError if a once schedule's time is not after `now` (aware); others pass."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if spec.type != "once":
        return
    assert spec.at is not None
    if spec.at.astimezone(_UTC) <= now.astimezone(_UTC):
        local_now = now.astimezone(_zone(spec.timezone))
        raise ValueError(
            f"once schedule at {spec.at:%Y-%m-%d %H:%M} ({spec.timezone}) is not in the "
            f"future: it is now {local_now:%Y-%m-%d %H:%M} there"
        )


def skipped_months(spec: ScheduleSpec) -> list[str]:
    """Months that never have a monthly schedule's day (days 29-31), so get no run.

    Day 29 gives ["February (non-leap years)"]; 30 ["February"]; 31 February, April, June,
    September, November. Anything else, last-day schedules included, gives [].
    """
    if spec.type != "monthly" or spec.day_of_month is None or spec.day_of_month < 29:
        return []
    if spec.day_of_month == 29:
        return ["February (non-leap years)"]
    longest = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
    return [name for name, days in zip(MONTHS, longest) if days < spec.day_of_month]


def _ordinal(day: int) -> str:
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def describe(spec: ScheduleSpec) -> str:
    """One line for a UI, e.g. "Monthly on the 15th at 09:00 (Europe/Warsaw)"."""
    zone = f"({spec.timezone})"
    if spec.type == "once":
        assert spec.at is not None
        return f"Once on {spec.at:%Y-%m-%d} at {spec.at:%H:%M} {zone}"
    if spec.type == "hourly":
        return f"Hourly at :{spec.minute:02d} {zone}"
    if spec.type == "daily":
        return f"Daily at {spec.time} {zone}"
    if spec.type == "weekly":
        assert spec.day_of_week is not None
        return f"Weekly on {WEEKDAYS[spec.day_of_week]} at {spec.time} {zone}"
    if spec.last_day_of_month:
        return f"Monthly on the last day at {spec.time} {zone}"
    assert spec.day_of_month is not None
    text = f"Monthly on the {_ordinal(spec.day_of_month)} at {spec.time} {zone}"
    skipped = skipped_months(spec)
    return f"{text}; skipped in {', '.join(skipped)}" if skipped else text


# --- Translation ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _utc_minute_shift(tz_name: str) -> int | None:
    """Minutes to subtract from a local minute to get the UTC minute, if one shift fits.

    None when the zone's UTC offset, sampled daily over 2020-2100 in the installed tz
    database, does not keep one minute-of-hour (offsets that change by half hours).
    """
    zone = _zone(tz_name)
    shifts: set[int] = set()
    day = dt.datetime(2020, 1, 1, 12, tzinfo=_UTC)
    while day.year <= 2100:
        offset = day.astimezone(zone).utcoffset()
        assert offset is not None
        seconds = int(offset.total_seconds())
        if seconds % 60:
            return None
        shifts.add((seconds // 60) % 60)
        if len(shifts) > 1:
            return None
        day += dt.timedelta(days=1)
    return shifts.pop()


def _schedule_fields(spec: ScheduleSpec) -> dict[str, Any]:
    """The schedule part shared by `to_prefect`, `to_prefect_schedule` and `preview`."""
    if spec.type == "once":
        return _once_fields(spec)
    hour, minute = spec.hour_minute
    if spec.type == "hourly":
        shift = _utc_minute_shift(spec.timezone)
        if shift is not None:
            return {"cron": f"{(minute - shift) % 60} * * * *", "timezone": "UTC", "day_or": True}
        cron = f"{minute} * * * *"
    elif spec.type == "daily":
        cron = f"{minute} {hour} * * *"
    elif spec.type == "weekly":
        assert spec.day_of_week is not None
        cron = f"{minute} {hour} * * {(spec.day_of_week + 1) % 7}"
    else:
        day = "L" if spec.last_day_of_month else str(spec.day_of_month)
        cron = f"{minute} {hour} {day} * *"
    return {"cron": cron, "timezone": spec.timezone, "day_or": True}


def _once_rrule(start: dt.datetime) -> str:
    return f"DTSTART:{start:%Y%m%dT%H%M%S}\nRRULE:FREQ=DAILY;COUNT=1"


def _once_fields(spec: ScheduleSpec) -> dict[str, Any]:
    assert spec.at is not None
    local = {"rrule": _once_rrule(spec.at.replace(tzinfo=None)), "timezone": spec.timezone}
    # Prefect reads DTSTART as a wall time in `timezone`; check it lands on our instant.
    # Compare in UTC: aware datetimes in different zones never compare equal when one of
    # them is in a fold (PEP 495), which is exactly the case this check is for.
    instant = spec.at.astimezone(_UTC)
    fires = _server_dates(local, n=1, start=instant - dt.timedelta(minutes=1))
    if fires and fires[0] == instant:
        return local
    return {"rrule": _once_rrule(spec.at.astimezone(_UTC).replace(tzinfo=None)), "timezone": "UTC"}


def to_prefect(spec: ScheduleSpec, slug: str) -> dict[str, Any]:
    """One entry for `schedules:` in prefect.yaml (or `deployment.apply()`), named by `slug`.

    Recurring: {"cron", "timezone", "day_or": True, "slug", "active": True};
    once: {"rrule", "timezone", "slug", "active": True}.
    """
    if not slug:
        raise ValueError("slug must be a non-empty string")
    return {**_schedule_fields(spec), "slug": slug, "active": True}


def to_prefect_schedule(spec: ScheduleSpec) -> CronSchedule | RRuleSchedule:
    """The Prefect client schedule object, for `client.create_deployment_schedules`."""
    from prefect.client.schemas.schedules import CronSchedule, RRuleSchedule

    fields = _schedule_fields(spec)
    if "rrule" in fields:
        return RRuleSchedule(**fields)
    return CronSchedule(**fields)


def _server_schedule(fields: dict[str, Any]) -> Any:
    from prefect.server.schemas.schedules import CronSchedule, RRuleSchedule

    if "rrule" in fields:
        return RRuleSchedule(**fields)
    return CronSchedule(**fields)


def _server_dates(fields: dict[str, Any], n: int, start: dt.datetime) -> list[dt.datetime]:
    """Prefect's scheduler dates, as plain UTC datetimes (it returns pendulum DateTimes)."""
    generator = _server_schedule(fields)._get_dates_generator(n=n, start=start)
    return [dt.datetime.fromtimestamp(d.timestamp(), tz=_UTC) for d in generator]


# --- Preview and DST notes --------------------------------------------------------------------


def _in_gap(zone: ZoneInfo, wall: dt.datetime) -> bool:
    """True if the naive wall time does not exist in the zone (skipped by spring forward)."""
    aware = wall.replace(tzinfo=zone)
    return aware.astimezone(_UTC).astimezone(zone).replace(tzinfo=None) != wall


def _in_fold(zone: ZoneInfo, wall: dt.datetime) -> bool:
    """True if the naive wall time happens twice in the zone (repeated by fall back)."""
    if _in_gap(zone, wall):
        return False
    first = wall.replace(tzinfo=zone, fold=0)
    return first.utcoffset() != wall.replace(tzinfo=zone, fold=1).utcoffset()


def _occurrences(zone: ZoneInfo, wall: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The UTC instants a gap or fold wall time can mean, earlier first."""
    a = wall.replace(tzinfo=zone, fold=0).astimezone(_UTC)
    b = wall.replace(tzinfo=zone, fold=1).astimezone(_UTC)
    return (a, b) if a <= b else (b, a)


def _clock_change(zone: ZoneInfo, wall: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """For a wall time in a gap or fold: the clock's reading just before and after the change."""
    lo, hi = _occurrences(zone, wall)
    old = lo.astimezone(zone).utcoffset()
    while hi - lo > dt.timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(zone).utcoffset() == old:
            lo = mid
        else:
            hi = mid
    change = hi.replace(microsecond=0)
    assert old is not None
    before = (change + old).replace(tzinfo=None)
    return before, change.astimezone(zone).replace(tzinfo=None)


def _label(moment: dt.datetime) -> str:
    """'CEST, UTC+2' / 'IST, UTC+5:30'."""
    offset = moment.utcoffset()
    assert offset is not None
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"{moment.tzname()}, UTC{sign}{hours}" + (f":{mins:02d}" if mins else "")


def _nominal_wall(spec: ScheduleSpec, zone: ZoneInfo, fired: dt.datetime) -> dt.datetime:
    """The wall time a daily/weekly/monthly/once run stands for (it may differ from its clock)."""
    if spec.at is not None:
        return spec.at.replace(tzinfo=None, fold=0)
    hour, minute = spec.hour_minute
    day = fired.astimezone(zone).date()
    candidates = [
        dt.datetime.combine(day + dt.timedelta(days=k), dt.time(hour, minute)) for k in (-1, 0, 1)
    ]
    return min(candidates, key=lambda wall: min(abs(o - fired) for o in _occurrences(zone, wall)))


def _fires_at(fields: dict[str, Any], instant: dt.datetime) -> bool:
    return _server_dates(fields, n=1, start=instant)[:1] == [instant]


def _fold_note(
    spec: ScheduleSpec,
    zone: ZoneInfo,
    wall: dt.datetime,
    fired: dt.datetime,
    fields: dict[str, Any],
) -> str:
    first, second = _occurrences(zone, wall)
    before, after = _clock_change(zone, wall)
    which = "first" if fired == first else "second"
    other = second if fired == first else first
    head = (
        f"{wall:%H:%M} happens twice in {spec.timezone} (clocks go back "
        f"{before:%H:%M}→{after:%H:%M})"
    )
    label = _label(fired.astimezone(zone))
    if _fires_at(fields, other):
        return f"{head}; runs at both, this is the {which} ({label})"
    return f"{head}; runs once, at the {which} ({label})"


def _note(spec: ScheduleSpec, fired: dt.datetime, fields: dict[str, Any]) -> str | None:
    zone = _zone(spec.timezone)
    local = fired.astimezone(zone)
    if spec.type == "hourly":
        wall = local.replace(tzinfo=None)
        if _in_fold(zone, wall):
            return _fold_note(spec, zone, wall, fired, fields)
        previous = (fired - dt.timedelta(hours=1)).astimezone(zone).replace(tzinfo=None)
        skipped = wall - dt.timedelta(hours=1)
        if previous != skipped and _in_gap(zone, skipped):
            before, after = _clock_change(zone, skipped)
            return (
                f"clocks go forward {before:%H:%M}→{after:%H:%M} in {spec.timezone}: "
                f"{skipped:%H:%M} does not exist; this run at {local:%H:%M} ({_label(local)}) "
                f"is one hour after the previous one"
            )
        return None
    wall = _nominal_wall(spec, zone, fired)
    if _in_fold(zone, wall):
        return _fold_note(spec, zone, wall, fired, fields)
    if _in_gap(zone, wall):
        before, after = _clock_change(zone, wall)
        on_day = "" if local.date() == wall.date() else f" on {local:%Y-%m-%d}"
        return (
            f"clocks go forward {before:%H:%M}→{after:%H:%M} in {spec.timezone} on "
            f"{wall:%Y-%m-%d}: {wall:%H:%M} does not exist; runs at {local:%H:%M}{on_day} "
            f"({_label(local)})"
        )
    return None


def preview(spec: ScheduleSpec, now: dt.datetime, count: int = 5) -> list[PreviewRun]:
    """The next `count` runs at or after `now` (aware), as Prefect's scheduler computes them.

    Prefect may return a date just before its start when the start falls inside a DST
    gap (the scheduler then dedupes it by idempotency key); such past dates are dropped.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if count < 0:
        raise ValueError(f"count must be >= 0 (got {count})")
    if count == 0:
        return []
    fields = _schedule_fields(spec)
    zone = _zone(spec.timezone)
    fired = [d for d in _server_dates(fields, n=count + 1, start=now) if d >= now][:count]
    return [
        PreviewRun(local=d.astimezone(zone), utc=d, note=_note(spec, d, fields)) for d in fired
    ]
