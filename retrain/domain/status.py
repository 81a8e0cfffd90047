"""Statuses of runs, stages, schedules and Trainer attempts, and the run lifecycle."""

from __future__ import annotations

from enum import Enum


class RunStatus(str, Enum):
    """A training run's lifecycle (seed 003, plus `crashed` for infrastructure deaths)."""

    PENDING = "pending"
    SCHEDULED = "scheduled"
    SUBMITTING = "submitting"
    RUNNING = "running"
    COMPLETED = "completed"
    NOT_BLESSED = "not_blessed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    CRASHED = "crashed"
    # A scheduled run that started too long after its slot and did not train.
    SKIPPED = "skipped"

    @property
    def terminal(self) -> bool:
        """No transition leaves a terminal status."""
        return self in TERMINAL


TERMINAL = frozenset(
    {RunStatus.COMPLETED, RunStatus.NOT_BLESSED, RunStatus.FAILED, RunStatus.CANCELLED,
     RunStatus.CRASHED, RunStatus.SKIPPED}
)
_ENDINGS = {RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.CRASHED, RunStatus.SKIPPED}
TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.PENDING: frozenset({RunStatus.SCHEDULED, RunStatus.SUBMITTING, RunStatus.RUNNING,
                                  *_ENDINGS}),
    RunStatus.SCHEDULED: frozenset({RunStatus.SUBMITTING, RunStatus.RUNNING, *_ENDINGS}),
    RunStatus.SUBMITTING: frozenset({RunStatus.RUNNING, *_ENDINGS}),
    RunStatus.RUNNING: frozenset({RunStatus.COMPLETED, RunStatus.NOT_BLESSED, *_ENDINGS}),
    **{status: frozenset() for status in TERMINAL},
}


class StageStatus(str, Enum):
    """One stage of a run."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    CACHED = "cached"
    FAILED = "failed"
    SKIPPED = "skipped"


class TransitionError(ValueError):
    """An operation asked for a status change the lifecycle does not allow."""


class ScheduleStatus(str, Enum):
    """A schedule's state (seed 003): completed is a once schedule that has run."""

    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class AttemptOutcome(str, Enum):
    """How one submission of a run's Trainer ended (running: not yet)."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    UNSCHEDULABLE = "unschedulable"
    INTERRUPTED = "interrupted"
    FAILED = "failed"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value
