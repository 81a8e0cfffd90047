"""A schedule's next runs as Prefect's scheduler computes them, with what DST does to each.

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
  hour, so hourly schedules are a UTC cron (`translate.py`): 23 runs on a spring-forward
  day, 25 on a fall-back day (02:30 CEST and 02:30 CET both run), never two at one
  instant, always at local minute MM.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from retrain.domain.schedule.spec import ScheduleSpec, ScheduleType
from retrain.domain.schedule.translate import schedule_fields, server_dates
from retrain.domain.schedule.zones import clock_change, in_fold, in_gap, label, occurrences, zone


class PreviewRun(BaseModel):
    """One upcoming run of a schedule, as the Prefect scheduler will create it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    local: dt.datetime = Field(description="Run time in the schedule's time zone.")
    utc: dt.datetime = Field(description="The same instant in UTC.")
    note: str | None = Field(
        default=None,
        description="What a DST change does to this run, if anything; otherwise None.",
    )


def _nominal_wall(spec: ScheduleSpec, tz: ZoneInfo, fired: dt.datetime) -> dt.datetime:
    """The wall time a daily/weekly/monthly/once run stands for (it may differ from its clock)."""
    if spec.at is not None:
        return spec.at.replace(tzinfo=None, fold=0)
    hour, minute = spec.hour_minute
    day = fired.astimezone(tz).date()
    candidates = [
        dt.datetime.combine(day + dt.timedelta(days=k), dt.time(hour, minute)) for k in (-1, 0, 1)
    ]
    return min(candidates, key=lambda wall: min(abs(o - fired) for o in occurrences(tz, wall)))


def _fires_at(fields: dict[str, Any], instant: dt.datetime) -> bool:
    return server_dates(fields, n=1, start=instant)[:1] == [instant]


def _fold_note(
    spec: ScheduleSpec,
    tz: ZoneInfo,
    wall: dt.datetime,
    fired: dt.datetime,
    fields: dict[str, Any],
) -> str:
    first, second = occurrences(tz, wall)
    before, after = clock_change(tz, wall)
    which = "first" if fired == first else "second"
    other = second if fired == first else first
    head = (
        f"{wall:%H:%M} happens twice in {spec.timezone} (clocks go back "
        f"{before:%H:%M}→{after:%H:%M})"
    )
    fired_label = label(fired.astimezone(tz))
    if _fires_at(fields, other):
        return f"{head}; runs at both, this is the {which} ({fired_label})"
    return f"{head}; runs once, at the {which} ({fired_label})"


def _note(spec: ScheduleSpec, fired: dt.datetime, fields: dict[str, Any]) -> str | None:
    tz = zone(spec.timezone)
    local = fired.astimezone(tz)
    if spec.type is ScheduleType.HOURLY:
        wall = local.replace(tzinfo=None)
        if in_fold(tz, wall):
            return _fold_note(spec, tz, wall, fired, fields)
        previous = (fired - dt.timedelta(hours=1)).astimezone(tz).replace(tzinfo=None)
        skipped = wall - dt.timedelta(hours=1)
        if previous != skipped and in_gap(tz, skipped):
            before, after = clock_change(tz, skipped)
            return (
                f"clocks go forward {before:%H:%M}→{after:%H:%M} in {spec.timezone}: "
                f"{skipped:%H:%M} does not exist; this run at {local:%H:%M} ({label(local)}) "
                f"is one hour after the previous one"
            )
        return None
    wall = _nominal_wall(spec, tz, fired)
    if in_fold(tz, wall):
        return _fold_note(spec, tz, wall, fired, fields)
    if in_gap(tz, wall):
        before, after = clock_change(tz, wall)
        on_day = "" if local.date() == wall.date() else f" on {local:%Y-%m-%d}"
        return (
            f"clocks go forward {before:%H:%M}→{after:%H:%M} in {spec.timezone} on "
            f"{wall:%Y-%m-%d}: {wall:%H:%M} does not exist; runs at {local:%H:%M}{on_day} "
            f"({label(local)})"
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
    fields = schedule_fields(spec)
    tz = zone(spec.timezone)
    fired = [d for d in server_dates(fields, n=count + 1, start=now) if d >= now][:count]
    return [
        PreviewRun(local=d.astimezone(tz), utc=d, note=_note(spec, d, fields)) for d in fired
    ]


def next_run(spec: ScheduleSpec, now: dt.datetime) -> dt.datetime | None:
    """The next slot at or after `now`, as Prefect's scheduler computes it."""
    upcoming = preview(spec, now, 1)
    return upcoming[0].utc if upcoming else None
