"""A retraining schedule (seed 003's TrainingSchedule): the spec, its checks and its description.

Pure and typed: no Prefect API calls, no database. `ScheduleSpec` is the user's schedule:
once, hourly, daily, weekly or monthly (`ScheduleType`), with the wall times in an IANA zone.
Its Prefect translation is in `translate.py`, its next runs and DST notes in `preview.py`.
A once schedule given a naive wall time that does not exist is refused; an ambiguous one
means the first occurrence unless `fold=1` (or an aware datetime) says otherwise.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import Enum

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from retrain.domain.schedule.zones import UTC, clock_change, in_gap, is_known_zone, zone


class ScheduleType(str, Enum):
    """The five schedule types of seed 003."""

    ONCE = "once"
    HOURLY = "hourly"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


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
_REQUIRED: dict[ScheduleType, tuple[str, ...]] = {
    ScheduleType.ONCE: ("at",),
    ScheduleType.HOURLY: ("minute",),
    ScheduleType.DAILY: ("time",),
    ScheduleType.WEEKLY: ("time", "day_of_week"),
    ScheduleType.MONTHLY: ("time",),
}
_ALLOWED: dict[ScheduleType, tuple[str, ...]] = {
    **_REQUIRED,
    ScheduleType.MONTHLY: ("time", "day_of_month", "last_day_of_month"),
}
_TYPED_FIELDS = ("at", "minute", "time", "day_of_week", "day_of_month", "last_day_of_month")
_TIME_RE = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


def _a(kind: ScheduleType) -> str:
    return f"an {kind.value}" if kind is ScheduleType.HOURLY else f"a {kind.value}"


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
        if not is_known_zone(value):
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
        tz = zone(tz_name)
        if value.tzinfo is not None:
            return value.astimezone(tz)
        if in_gap(tz, value):
            before, after = clock_change(tz, value)
            raise ValueError(
                f"at {value:%Y-%m-%d %H:%M} does not exist in {tz_name}: clocks go forward "
                f"{before:%H:%M}→{after:%H:%M} that day; give another time or an aware datetime"
            )
        return value.replace(tzinfo=tz)  # an ambiguous wall time keeps its fold (0: first)

    @model_validator(mode="after")
    def _fields_match_type(self) -> ScheduleSpec:
        for name in _TYPED_FIELDS:
            value = getattr(self, name)
            is_set = value is True if name == "last_day_of_month" else value is not None
            if is_set and name not in _ALLOWED[self.type]:
                users = [kind.value for kind, fields in _ALLOWED.items() if name in fields]
                raise ValueError(
                    f"{name} does not apply to {_a(self.type)} schedule (it is for: "
                    f"{', '.join(users)})"
                )
        for name in _REQUIRED[self.type]:
            if getattr(self, name) is None:
                raise ValueError(f"{_a(self.type)} schedule needs {name}")
        if self.type is ScheduleType.MONTHLY:
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


# --- Checks and descriptions ------------------------------------------------------------------


def check_once_in_future(spec: ScheduleSpec, now: dt.datetime) -> None:
    """Raise ValueError if a once schedule's time is not after `now` (aware); others pass."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if spec.type is not ScheduleType.ONCE:
        return
    assert spec.at is not None
    if spec.at.astimezone(UTC) <= now.astimezone(UTC):
        local_now = now.astimezone(zone(spec.timezone))
        raise ValueError(
            f"once schedule at {spec.at:%Y-%m-%d %H:%M} ({spec.timezone}) is not in the "
            f"future: it is now {local_now:%Y-%m-%d %H:%M} there"
        )


def skipped_months(spec: ScheduleSpec) -> list[str]:
    """Months that never have a monthly schedule's day (days 29-31), so get no run.

    Day 29 gives ["February (non-leap years)"]; 30 ["February"]; 31 February, April, June,
    September, November. Anything else, last-day schedules included, gives [].
    """
    if (spec.type is not ScheduleType.MONTHLY or spec.day_of_month is None
            or spec.day_of_month < 29):
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
    where = f"({spec.timezone})"
    if spec.type is ScheduleType.ONCE:
        assert spec.at is not None
        return f"Once on {spec.at:%Y-%m-%d} at {spec.at:%H:%M} {where}"
    if spec.type is ScheduleType.HOURLY:
        return f"Hourly at :{spec.minute:02d} {where}"
    if spec.type is ScheduleType.DAILY:
        return f"Daily at {spec.time} {where}"
    if spec.type is ScheduleType.WEEKLY:
        assert spec.day_of_week is not None
        return f"Weekly on {WEEKDAYS[spec.day_of_week]} at {spec.time} {where}"
    if spec.last_day_of_month:
        return f"Monthly on the last day at {spec.time} {where}"
    assert spec.day_of_month is not None
    text = f"Monthly on the {_ordinal(spec.day_of_month)} at {spec.time} {where}"
    skipped = skipped_months(spec)
    return f"{text}; skipped in {', '.join(skipped)}" if skipped else text
