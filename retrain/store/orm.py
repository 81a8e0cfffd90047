"""ORM models of the run-record store (seed 003's training domain), SQLAlchemy 2 style.

Laid out like Prefect's server (`orm_models.py` here, functions per table in sibling
modules, migrations under `migrations/`). One registered model has many runs (its
versions), each run has one row per stage and one per finished epoch; a registered model
has at most one schedule.
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import Enum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Enum as EnumType,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from retrain.domain.clock import utcnow
from retrain.domain.recommender import ModelType
from retrain.domain.schedule.spec import ScheduleType
from retrain.domain.serving import ModelAction
from retrain.domain.stages import Stage
from retrain.domain.status import AttemptOutcome, RunStatus, ScheduleStatus, StageStatus


def new_id() -> str:
    """A new primary key (UUID4 string)."""
    return str(uuid.uuid4())


def _enum_column(enum: type[Enum], length: int, constraint: str) -> EnumType:
    """A VARCHAR(`length`) type over `enum` that stores its members' values (as the columns
    held before they were typed), kept to them by a CHECK constraint named `constraint`.

    Reads return members; writes take members or their values, and any other string is
    refused before it reaches the database.
    """
    return EnumType(
        enum, native_enum=False, create_constraint=True, length=length, name=constraint,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    """Declarative base: every table has a UUID id and created/updated timestamps."""

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    created: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    # Set in Python, not as SQL now(): SQLite renders now() with literal parameters, which
    # SQLAlchemy cannot batch, so a flush updating several rows alike would fail.
    updated: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=utcnow, nullable=False
    )


class RegisteredModel(Base):
    """A model name: its runs are its versions; run numbers are allocated here."""

    __tablename__ = "registered_model"

    name: Mapped[str] = mapped_column(String(63), unique=True, nullable=False)
    model_type: Mapped[ModelType | None] = mapped_column(
        _enum_column(ModelType, 32, "ck_registered_model_model_type"))
    last_run_number: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    latest_version: Mapped[str | None] = mapped_column(String(32))
    champion_version: Mapped[str | None] = mapped_column(String(32))
    deployed: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    deployed_version: Mapped[str | None] = mapped_column(String(32))
    deployed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # The run whose (possibly edited) config later runs of this model start from.
    template_run_id: Mapped[str | None] = mapped_column(String(36))
    synced_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    runs: Mapped[list[TrainingRun]] = relationship(back_populates="registered_model")
    schedule: Mapped[TrainingSchedule | None] = relationship(back_populates="registered_model")
    serving_changes: Mapped[list[ServingChange]] = relationship(
        back_populates="registered_model", cascade="all, delete-orphan",
        order_by="ServingChange.sequence")


class ServingChange(Base):
    """One change of what serves for a model name: a push, deploy, undeploy or rollback,
    with who asked, why, and the champion it replaced (the champion history)."""

    __tablename__ = "serving_change"
    __table_args__ = (UniqueConstraint("registered_model_id", "sequence"),)

    registered_model_id: Mapped[str] = mapped_column(
        ForeignKey("registered_model.id", ondelete="CASCADE"), nullable=False, index=True
    )
    # 1, 2, … per model: the order the changes happened in.
    sequence: Mapped[int] = mapped_column(Integer, nullable=False)
    action: Mapped[ModelAction] = mapped_column(
        _enum_column(ModelAction, 16, "ck_serving_change_action"), nullable=False)
    # The registered version serving after the change (None: nothing serves).
    version: Mapped[str | None] = mapped_column(String(32))
    previous_version: Mapped[str | None] = mapped_column(String(32))
    serving_version: Mapped[str | None] = mapped_column(String(32))
    serving_uri: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(200), nullable=False)
    reason: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(ForeignKey("training_run.id", ondelete="SET NULL"))
    # The operation's own flow run, when it ran as one (a Prefect deployment, the UI).
    flow_run_id: Mapped[str | None] = mapped_column(String(36))

    registered_model: Mapped[RegisteredModel] = relationship(back_populates="serving_changes")


class TrainingRun(Base):
    """One training run of a registered model (seed 003's TrainingRun)."""

    __tablename__ = "training_run"
    __table_args__ = (UniqueConstraint("registered_model_id", "run_number"),)

    registered_model_id: Mapped[str] = mapped_column(
        ForeignKey("registered_model.id", ondelete="CASCADE"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    run_number: Mapped[int] = mapped_column(Integer, nullable=False)
    # What the run ran with; never changed once created (edits go to `edited_config`).
    config: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    edited_config: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    config_edited_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    source_run_id: Mapped[str | None] = mapped_column(
        ForeignKey("training_run.id", ondelete="SET NULL")
    )
    status: Mapped[RunStatus] = mapped_column(
        _enum_column(RunStatus, 16, "ck_training_run_status"), nullable=False, index=True
    )
    current_stage: Mapped[Stage | None] = mapped_column(
        _enum_column(Stage, 32, "ck_training_run_current_stage")
    )
    current_epoch: Mapped[int | None] = mapped_column(Integer)
    total_epochs: Mapped[int | None] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    artifacts: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    blessed: Mapped[bool | None] = mapped_column(Boolean)
    blessing: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    forced_reason: Mapped[str | None] = mapped_column(Text)
    estimated_cost: Mapped[float | None] = mapped_column(Float)
    estimated_seconds: Mapped[float | None] = mapped_column(Float)
    cost: Mapped[float | None] = mapped_column(Float)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    error_stage: Mapped[Stage | None] = mapped_column(
        _enum_column(Stage, 32, "ck_training_run_error_stage")
    )
    error_message: Mapped[str | None] = mapped_column(Text)
    flow_run_id: Mapped[str | None] = mapped_column(String(36), unique=True)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))
    registered_version: Mapped[str | None] = mapped_column(String(32))
    deployed: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Last sign of life from the process running the flow run (every RETRAIN_HEARTBEAT_SECONDS).
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # When the model's overlap policy let the run go (retrain/domain/overlap.py).
    admitted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # A deleted run keeps its row (so operations on it are refused with that reason) but
    # loses its artifacts and leaves every listing.
    deleted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    # Set when a schedule's deployment started the run (its slot, or "trigger now").
    schedule_id: Mapped[str | None] = mapped_column(
        ForeignKey("training_schedule.id", ondelete="SET NULL"), index=True
    )
    # How long after its scheduled slot the run started (scheduled runs only).
    lateness_seconds: Mapped[float | None] = mapped_column(Float)
    # How the Trainer ran: the devices TensorFlow saw and the strategy over them.
    trainer_strategy: Mapped[str | None] = mapped_column(String(64))
    trainer_replicas: Mapped[int | None] = mapped_column(Integer)
    gpus_visible: Mapped[list[str] | None] = mapped_column(JSON)

    registered_model: Mapped[RegisteredModel] = relationship(back_populates="runs")
    stages: Mapped[list[TrainingStage]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="TrainingStage.position"
    )
    epochs: Mapped[list[TrainingMetricsHistory]] = relationship(
        back_populates="run", cascade="all, delete-orphan",
        order_by="TrainingMetricsHistory.epoch",
    )
    trainer_attempts: Mapped[list[TrainerAttemptRecord]] = relationship(
        back_populates="run", cascade="all, delete-orphan",
        order_by="TrainerAttemptRecord.number",
    )


class TrainingStage(Base):
    """One of the eight stages of a run: status and timing."""

    __tablename__ = "training_stage"
    __table_args__ = (UniqueConstraint("run_id", "stage"),)

    run_id: Mapped[str] = mapped_column(
        ForeignKey("training_run.id", ondelete="CASCADE"), nullable=False, index=True
    )
    stage: Mapped[Stage] = mapped_column(
        _enum_column(Stage, 32, "ck_training_stage_stage"), nullable=False
    )
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[StageStatus] = mapped_column(
        _enum_column(StageStatus, 16, "ck_training_stage_status"), nullable=False
    )
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    seconds: Mapped[float | None] = mapped_column(Float)
    message: Mapped[str | None] = mapped_column(Text)
    # The stage's output directory; cached stages share their producer's directory.
    output_uri: Mapped[str | None] = mapped_column(Text)

    run: Mapped[TrainingRun] = relationship(back_populates="stages")


class TrainingMetricsHistory(Base):
    """Metrics of one finished epoch of a run (seed 003's TrainingMetricsHistory)."""

    __tablename__ = "training_metrics_history"
    __table_args__ = (UniqueConstraint("run_id", "epoch"),)

    run_id: Mapped[str] = mapped_column(
        ForeignKey("training_run.id", ondelete="CASCADE"), nullable=False, index=True
    )
    epoch: Mapped[int] = mapped_column(Integer, nullable=False)
    seconds: Mapped[float | None] = mapped_column(Float)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)

    run: Mapped[TrainingRun] = relationship(back_populates="epochs")


class TrainerAttemptRecord(Base):
    """One submission of a run's Trainer to its deployment: the GPU option and how it ended
    (succeeded, unschedulable, interrupted, failed, cancelled; running while it runs)."""

    __tablename__ = "trainer_attempt"
    __table_args__ = (UniqueConstraint("run_id", "number"),)

    run_id: Mapped[str] = mapped_column(
        ForeignKey("training_run.id", ondelete="CASCADE"), nullable=False, index=True
    )
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    gpu_type: Mapped[str | None] = mapped_column(String(64))
    gpu_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    flow_run_id: Mapped[str | None] = mapped_column(String(36))
    outcome: Mapped[AttemptOutcome] = mapped_column(
        _enum_column(AttemptOutcome, 16, "ck_trainer_attempt_outcome"), nullable=False
    )
    reason: Mapped[str | None] = mapped_column(Text)
    resumed_from_epoch: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    run: Mapped[TrainingRun] = relationship(back_populates="trainer_attempts")


class TrainingSchedule(Base):
    """A registered model's retraining schedule (seed 003's TrainingSchedule).

    It runs as a Prefect deployment of the training flow (`prefect_deployment_name`) with
    one deployment schedule (`slug`); the store keeps the frozen config, the policy and
    the statistics. Hourly schedules keep their minute in `schedule_time` as "00:MM", as
    seed 003 does.
    """

    __tablename__ = "training_schedule"

    registered_model_id: Mapped[str] = mapped_column(
        ForeignKey("registered_model.id", ondelete="CASCADE"), nullable=False, unique=True
    )
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    schedule_type: Mapped[ScheduleType] = mapped_column(
        _enum_column(ScheduleType, 16, "ck_training_schedule_schedule_type"), nullable=False)
    scheduled_datetime: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    schedule_time: Mapped[str | None] = mapped_column(String(5))
    schedule_day_of_week: Mapped[int | None] = mapped_column(Integer)
    schedule_day_of_month: Mapped[int | None] = mapped_column(Integer)
    last_day_of_month: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    schedule_timezone: Mapped[str] = mapped_column(String(64), nullable=False, default="UTC")
    config: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    # The run whose config was frozen, when created from a run.
    source_run_id: Mapped[str | None] = mapped_column(String(36))
    status: Mapped[ScheduleStatus] = mapped_column(
        _enum_column(ScheduleStatus, 16, "ck_training_schedule_status"), nullable=False,
        default=ScheduleStatus.ACTIVE,
    )
    # Why the status last changed (e.g. the circuit breaker's reason), and when.
    status_reason: Mapped[str | None] = mapped_column(Text)
    status_changed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    slug: Mapped[str | None] = mapped_column(String(100), unique=True)
    prefect_deployment_id: Mapped[str | None] = mapped_column(String(36))
    prefect_deployment_name: Mapped[str | None] = mapped_column(String(200))
    # Policy: a slot started later than this is skipped, not caught up.
    max_lateness_seconds: Mapped[int] = mapped_column(Integer, nullable=False, default=3600)
    # Policy: this many failed runs in a row pause the schedule (0: never).
    pause_after_failures: Mapped[int] = mapped_column(Integer, nullable=False, default=3)
    last_run_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    next_run_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    total_runs: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    successful_runs: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    failed_runs: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    skipped_runs: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    consecutive_failures: Mapped[int] = mapped_column(Integer, nullable=False, default=0)

    registered_model: Mapped[RegisteredModel] = relationship(back_populates="schedule")

    @property
    def success_rate(self) -> float | None:
        """Successful runs per finished run, in percent (seed 003); None before any run."""
        if self.total_runs == 0:
            return None
        return self.successful_runs / self.total_runs * 100
