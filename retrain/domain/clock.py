"""The one clock: timezone-aware UTC, and naive stored datetimes read back as UTC."""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    """Now, in UTC, timezone-aware."""
    return dt.datetime.now(dt.timezone.utc)


def aware(moment: dt.datetime | None) -> dt.datetime | None:
    """`moment` as an aware datetime: SQLite hands back naive ones, written in UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=dt.timezone.utc)
    return moment
