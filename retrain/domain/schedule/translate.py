"""A ScheduleSpec translated into a Prefect deployment schedule, and Prefect's own dates for it.

Pure: no Prefect API calls. `to_prefect` gives the entry for `prefect.yaml` /
`deployment.apply()`, `to_prefect_schedule` the client schema object for
`client.create_deployment_schedules`; `server_dates` the run times computed by the same
server-side code the Prefect scheduler runs (`prefect.server.schemas.schedules.*.
_get_dates_generator`, which `prefect.server.models.deployments._generate_scheduled_flow_runs`
calls), so a preview (`preview.py`) never disagrees with what will fire.

Translation (seed 003 cron patterns; `day_or` is always True, as in cron):
  once     RRule `DTSTART:<local wall time>` + `RRULE:FREQ=DAILY;COUNT=1` in the spec's zone.
           If Prefect would read that wall time as a different instant (the second
           occurrence of a repeated hour), the DTSTART is written in UTC with zone "UTC".
  hourly   `MM * * * *` evaluated in **UTC** (minute shifted for zones whose offset is not
           a whole number of hours), see the DST policy in `preview.py`. Zones whose offset
           changes by other than whole hours (Australia/Lord_Howe) keep a cron in their own
           zone.
  daily    `MM HH * * *` in the spec's zone.
  weekly   `MM HH * * D`; seed 003 counts 0=Monday..6=Sunday, cron 1=Monday..0=Sunday.
  monthly  `MM HH DD * *`; months without day DD are skipped (see `spec.skipped_months`).
           Last day of the month: `MM HH L * *`. Prefect 3.8.8 vendors croniter
           (`prefect._vendor.croniter`), which accepts `L` in the day-of-month field;
           it fires on Jan 31, Feb 28 (29 in leap years), Mar 31, Apr 30, ...
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import TYPE_CHECKING, Any

from retrain.domain.schedule.spec import ScheduleSpec, ScheduleType
from retrain.domain.schedule.zones import UTC, zone

if TYPE_CHECKING:
    from prefect.client.schemas.schedules import CronSchedule, RRuleSchedule


@functools.lru_cache(maxsize=None)
def _utc_minute_shift(tz_name: str) -> int | None:
    """Minutes to subtract from a local minute to get the UTC minute, if one shift fits.

    None when the zone's UTC offset, sampled daily over 2020-2100 in the installed tz
    database, does not keep one minute-of-hour (offsets that change by half hours).
    """
    tz = zone(tz_name)
    shifts: set[int] = set()
    day = dt.datetime(2020, 1, 1, 12, tzinfo=UTC)
    while day.year <= 2100:
        offset = day.astimezone(tz).utcoffset()
        assert offset is not None
        seconds = int(offset.total_seconds())
        if seconds % 60:
            return None
        shifts.add((seconds // 60) % 60)
        if len(shifts) > 1:
            return None
        day += dt.timedelta(days=1)
    return shifts.pop()


def schedule_fields(spec: ScheduleSpec) -> dict[str, Any]:
    """The schedule part shared by `to_prefect`, `to_prefect_schedule` and `preview`."""
    if spec.type is ScheduleType.ONCE:
        return _once_fields(spec)
    hour, minute = spec.hour_minute
    if spec.type is ScheduleType.HOURLY:
        shift = _utc_minute_shift(spec.timezone)
        if shift is not None:
            return {"cron": f"{(minute - shift) % 60} * * * *", "timezone": "UTC", "day_or": True}
        cron = f"{minute} * * * *"
    elif spec.type is ScheduleType.DAILY:
        cron = f"{minute} {hour} * * *"
    elif spec.type is ScheduleType.WEEKLY:
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
    instant = spec.at.astimezone(UTC)
    fires = server_dates(local, n=1, start=instant - dt.timedelta(minutes=1))
    if fires and fires[0] == instant:
        return local
    return {"rrule": _once_rrule(spec.at.astimezone(UTC).replace(tzinfo=None)), "timezone": "UTC"}


def to_prefect(spec: ScheduleSpec, slug: str) -> dict[str, Any]:
    """One entry for `schedules:` in prefect.yaml (or `deployment.apply()`), named by `slug`.

    Recurring: {"cron", "timezone", "day_or": True, "slug", "active": True};
    once: {"rrule", "timezone", "slug", "active": True}.
    """
    if not slug:
        raise ValueError("slug must be a non-empty string")
    return {**schedule_fields(spec), "slug": slug, "active": True}


def to_prefect_schedule(spec: ScheduleSpec) -> CronSchedule | RRuleSchedule:
    """The Prefect client schedule object, for `client.create_deployment_schedules`."""
    from prefect.client.schemas.schedules import CronSchedule, RRuleSchedule

    fields = schedule_fields(spec)
    if "rrule" in fields:
        return RRuleSchedule(**fields)
    return CronSchedule(**fields)


def _server_schedule(fields: dict[str, Any]) -> Any:
    from prefect.server.schemas.schedules import CronSchedule, RRuleSchedule

    if "rrule" in fields:
        return RRuleSchedule(**fields)
    return CronSchedule(**fields)


def server_dates(fields: dict[str, Any], n: int, start: dt.datetime) -> list[dt.datetime]:
    """Prefect's scheduler dates, as plain UTC datetimes (it returns pendulum DateTimes)."""
    generator = _server_schedule(fields)._get_dates_generator(n=n, start=start)
    return [dt.datetime.fromtimestamp(d.timestamp(), tz=UTC) for d in generator]
