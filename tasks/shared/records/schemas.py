"""Statuses, allowed transitions and the pydantic views of run records."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

STAGES = (
    "ExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator",
    "Transform", "Trainer", "Evaluator", "Pusher",
)


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


class StageView(BaseModel):
    """One stage row."""

    model_config = ConfigDict(from_attributes=True)

    stage: str = Field(description="TFX stage name.")
    status: StageStatus = Field(description="Stage status.")
    started_at: dt.datetime | None = Field(default=None, description="When it started.")
    finished_at: dt.datetime | None = Field(default=None, description="When it ended.")
    seconds: float | None = Field(default=None, description="Wall time.")
    message: str | None = Field(default=None, description="Error or note.")


class RunView(BaseModel):
    """A training run as operations and the CLI show it."""

    model_config = ConfigDict(from_attributes=True)

    id: str = Field(description="Run id (UUID).")
    name: str = Field(description="Run name.")
    run_number: int = Field(description="Per registered model, 1, 2, 3 …")
    status: RunStatus = Field(description="Lifecycle status.")
    current_stage: str | None = Field(default=None, description="Stage running or last run.")
    config: dict[str, Any] = Field(description="Config snapshot.")
    stages: list[StageView] = Field(default_factory=list, description="Eight stages, in order.")
    metrics: dict[str, Any] | None = Field(default=None, description="Final metrics.")
    blessed: bool | None = Field(default=None, description="Evaluator's verdict.")
    error_stage: str | None = Field(default=None, description="Stage that failed.")
    error_message: str | None = Field(default=None, description="Why it failed.")
    flow_run_id: str | None = Field(default=None, description="Prefect flow run.")
    registered_version: str | None = Field(default=None, description="MLflow version pushed.")
    created: dt.datetime = Field(description="Created at.")
