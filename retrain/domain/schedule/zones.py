"""Time-zone arithmetic the schedule rules share: DST gaps and folds, clock changes, labels.

Pure, on the installed tz database (zoneinfo): a wall time is in a *gap* when spring forward
skips it, in a *fold* when fall back repeats it.
"""

from __future__ import annotations

import datetime as dt
import functools
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

UTC = dt.timezone.utc


@functools.lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def is_known_zone(name: str) -> bool:
    """True if `name` is an IANA zone of the installed tz database."""
    try:
        return name in _known_zones() and ZoneInfo(name) is not None
    except (ZoneInfoNotFoundError, ValueError):
        return False


def zone(name: str) -> ZoneInfo:
    """The zone named `name` (an IANA name)."""
    return ZoneInfo(name)


def in_gap(tz: ZoneInfo, wall: dt.datetime) -> bool:
    """True if the naive wall time does not exist in the zone (skipped by spring forward)."""
    aware = wall.replace(tzinfo=tz)
    return aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != wall


def in_fold(tz: ZoneInfo, wall: dt.datetime) -> bool:
    """True if the naive wall time happens twice in the zone (repeated by fall back)."""
    if in_gap(tz, wall):
        return False
    first = wall.replace(tzinfo=tz, fold=0)
    return first.utcoffset() != wall.replace(tzinfo=tz, fold=1).utcoffset()


def occurrences(tz: ZoneInfo, wall: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The UTC instants a gap or fold wall time can mean, earlier first."""
    a = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    b = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    return (a, b) if a <= b else (b, a)


def clock_change(tz: ZoneInfo, wall: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """For a wall time in a gap or fold: the clock's reading just before and after the change."""
    lo, hi = occurrences(tz, wall)
    old = lo.astimezone(tz).utcoffset()
    while hi - lo > dt.timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(tz).utcoffset() == old:
            lo = mid
        else:
            hi = mid
    change = hi.replace(microsecond=0)
    assert old is not None
    before = (change + old).replace(tzinfo=None)
    return before, change.astimezone(tz).replace(tzinfo=None)


def label(moment: dt.datetime) -> str:
    """'CEST, UTC+2' / 'IST, UTC+5:30'."""
    offset = moment.utcoffset()
    assert offset is not None
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"{moment.tzname()}, UTC{sign}{hours}" + (f":{mins:02d}" if mins else "")
