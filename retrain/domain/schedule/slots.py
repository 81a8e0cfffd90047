"""Late-run policy of scheduled runs (pure): run the slot, or skip it as too late.

When the Prefect server or every worker was down, the slots that passed meanwhile wait as
Late flow runs and would all start together once things are back. A scheduled run that
starts more than its schedule's `max_lateness` after its slot is skipped instead: it
records the lateness, trains nothing and ends as Completed/"Skipped". The next slot runs as
usual, so a long outage costs skipped slots, not a burst of catch-up trainings.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field


class SlotCheck(BaseModel):
    """Whether a run may go ahead, and how late it started against its slot."""

    skip: bool = Field(description="True if the run must not train (too late).")
    lateness_seconds: float | None = Field(
        default=None, description="Start minus slot; None for runs without a schedule.")
    reason: str | None = Field(default=None, description="Why it was skipped.")


def _minutes(seconds: float) -> str:
    minutes = int(seconds // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def check_slot(
    slot: dt.datetime | None, started: dt.datetime, max_lateness_seconds: int | None,
    *, schedule_status: str = "active", auto_scheduled: bool = False,
) -> SlotCheck:
    """Decide for a run that started at `started` (aware) for slot `slot`.

    No slot or no policy (not a scheduled run) always goes ahead. A run exactly
    `max_lateness_seconds` late still runs; one second more is skipped. A run the Prefect
    scheduler made (`auto_scheduled`) for a schedule that is no longer active (paused in
    a race with the scheduler) is skipped too; runs started by hand always go ahead.
    """
    if started.tzinfo is None:
        raise ValueError("started must be timezone-aware")
    if slot is None or max_lateness_seconds is None:
        return SlotCheck(skip=False)
    if auto_scheduled and schedule_status != "active":
        return SlotCheck(skip=True, reason=f"skipped: the schedule is {schedule_status}")
    if slot.tzinfo is None:
        raise ValueError("slot must be timezone-aware")
    late = max((started - slot).total_seconds(), 0.0)
    if late <= max_lateness_seconds:
        return SlotCheck(skip=False, lateness_seconds=late)
    return SlotCheck(
        skip=True, lateness_seconds=late,
        reason=(f"skipped: started {_minutes(late)} after its slot "
                f"{slot.astimezone(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, more than the "
                f"{_minutes(max_lateness_seconds)} the schedule allows; the next slot runs "
                f"as usual"),
    )
