"""The policies a schedule applies to its runs (pure): late slots, statistics, the circuit breaker.

Late slots: when the Prefect server or every worker was down, the slots that passed
meanwhile wait as Late flow runs and would all start together once things are back. A
scheduled run that starts more than its schedule's `max_lateness` after its slot is skipped
instead: it records the lateness, trains nothing and ends as Completed/"Skipped". The next
slot runs as usual, so a long outage costs skipped slots, not a burst of catch-up trainings.

Statistics: which run statuses count as successful, failed and finished (`COUNTED`), and the
consecutive-failure streak, recounted from the runs (never incremented).

Circuit breaker: `pause_after_failures` failed runs in a row pause an active schedule, with a
reason naming the runs and the last error.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict, Field

from retrain.domain.status import RunStatus, ScheduleStatus

SUCCESSFUL: frozenset[RunStatus] = frozenset({RunStatus.COMPLETED, RunStatus.NOT_BLESSED})
FAILED: frozenset[RunStatus] = frozenset({RunStatus.FAILED, RunStatus.CRASHED})
# Finished runs that count in `total_runs`: successful, failed and cancelled ones.
COUNTED: frozenset[RunStatus] = SUCCESSFUL | FAILED | {RunStatus.CANCELLED}
# Longest status reason the store keeps.
REASON_LIMIT = 2000


class SchedulePolicy(BaseModel):
    """What a schedule does about late slots and repeated failures."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_lateness_minutes: int = Field(
        default=60, ge=1,
        description="A slot whose run starts more than this many minutes late (server or "
        "worker down) is skipped and recorded as skipped, not caught up.",
    )
    pause_after_failures: int = Field(
        default=3, ge=0,
        description="Circuit breaker: this many failed runs in a row pause the schedule "
        "(0: never). Resuming starts the count afresh.",
    )


# --- late slots ---------------------------------------------------------------------------------

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
    *, schedule_status: ScheduleStatus | str = ScheduleStatus.ACTIVE,
    auto_scheduled: bool = False,
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
    status = ScheduleStatus(schedule_status)
    if auto_scheduled and status is not ScheduleStatus.ACTIVE:
        return SlotCheck(skip=True, reason=f"skipped: the schedule is {status.value}")
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


# --- statistics ---------------------------------------------------------------------------------

class ScheduleStatistics(BaseModel):
    """A schedule's run counts, recounted from its runs."""

    total_runs: int = Field(description="Finished runs: successful, failed and cancelled.")
    successful_runs: int = Field(description="Completed or not blessed.")
    failed_runs: int = Field(description="Failed or crashed.")
    skipped_runs: int = Field(description="Slots skipped as too late.")
    last_run_at: dt.datetime | None = Field(
        default=None, description="Latest start of a run that was not skipped.")
    consecutive_failures: int = Field(description="Failed runs in a row, newest first.")


def consecutive_failures(
    runs: Iterable[tuple[RunStatus, dt.datetime]], since: dt.datetime | None,
) -> int:
    """Failed runs in a row among `(status, started)` pairs given newest first.

    Only finished runs (`COUNTED`) started at or after `since` (the schedule's last status
    change: a resume starts afresh) take part; skipped and unfinished runs neither break nor
    extend a streak.
    """
    streak = 0
    for status, started in runs:
        if status not in COUNTED or (since and started < since):
            continue
        if status not in FAILED:
            break
        streak += 1
    return streak


def statistics(
    runs: Sequence[tuple[RunStatus, dt.datetime]], since: dt.datetime | None,
) -> ScheduleStatistics:
    """The statistics of a schedule whose runs are `(status, started)` pairs, newest first."""
    started = [began for status, began in runs if status is not RunStatus.SKIPPED]
    return ScheduleStatistics(
        total_runs=sum(status in COUNTED for status, _ in runs),
        successful_runs=sum(status in SUCCESSFUL for status, _ in runs),
        failed_runs=sum(status in FAILED for status, _ in runs),
        skipped_runs=sum(status is RunStatus.SKIPPED for status, _ in runs),
        last_run_at=max(started) if started else None,
        consecutive_failures=consecutive_failures(runs, since),
    )


# --- circuit breaker ----------------------------------------------------------------------------

def breaker_trips(status: ScheduleStatus, consecutive: int, limit: int) -> bool:
    """Whether `consecutive` failed runs in a row pause a schedule in `status` (limit 0: never)."""
    return status is ScheduleStatus.ACTIVE and bool(limit) and consecutive >= limit


def pause_reason(
    runs: Sequence[tuple[int, RunStatus]], consecutive: int, error_stage: str | None,
    error_message: str | None,
) -> str:
    """Why the circuit breaker paused the schedule: the failed runs in a row, oldest first,
    and the last error. `runs` are `(run_number, status)` pairs, newest first."""
    numbers = [f"#{number}" for number, status in runs if status in FAILED][:consecutive]
    return (f"paused after {consecutive} failed runs in a row "
            f"({', '.join(reversed(numbers))}); last error at "
            f"{error_stage or 'an unknown stage'}: {error_message}")[:REASON_LIMIT]
