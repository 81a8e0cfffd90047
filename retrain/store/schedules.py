"""Training schedules: one per registered model, its status and its statistics.

Module-level functions that take an explicit session, like `runs.py`. Statistics are
recounted from the schedule's runs (never incremented), so the flow's hooks and the failure
automation may both refresh them, in any order and as often as they like.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from retrain.domain.clock import aware, utcnow
from retrain.domain.schedule.preview import next_run
from retrain.domain.schedule.rules import statistics
from retrain.domain.schedule.spec import ScheduleSpec, ScheduleType
from retrain.domain.status import RunStatus, ScheduleStatus
from retrain.store.orm import RegisteredModel, TrainingRun, TrainingSchedule
from retrain.store.runs import by_id_prefix, model_by_name


class ScheduleExists(ValueError):
    """The registered model already has a schedule (one per model)."""

    def __init__(self, existing: TrainingSchedule):
        self.schedule_id = existing.id
        super().__init__(
            f"model {existing.registered_model.name!r} already has schedule {existing.id} "
            f"({existing.name!r}, {existing.status}); a model has one schedule: delete "
            f"that one first (retrain schedules delete {existing.id})"
        )


def create_schedule(
    session: Session, model: RegisteredModel, *, name: str, fields: dict[str, Any],
    config: dict[str, Any], slug: str, description: str | None = None,
    source_run_id: str | None = None, max_lateness_seconds: int = 3600,
    pause_after_failures: int = 3,
) -> TrainingSchedule:
    """A new active schedule of `model`; ScheduleExists if the model has one.

    `fields` are the seed 003 columns (schedule_type, scheduled_datetime, schedule_time,
    schedule_day_of_week, schedule_day_of_month, last_day_of_month, schedule_timezone).
    """
    existing = schedule_of_model(session, model)
    if existing is not None:
        raise ScheduleExists(existing)
    schedule = TrainingSchedule(
        registered_model_id=model.id, name=name, description=description, config=config,
        slug=slug, source_run_id=source_run_id, status=ScheduleStatus.ACTIVE,
        status_changed_at=utcnow(), max_lateness_seconds=max_lateness_seconds,
        pause_after_failures=pause_after_failures, total_runs=0, successful_runs=0,
        failed_runs=0, skipped_runs=0, consecutive_failures=0, **fields,
    )
    try:
        with session.begin_nested():
            session.add(schedule)
            session.flush()
    except IntegrityError:  # a concurrent creator won the one-per-model constraint
        session.expire_all()
        raise ScheduleExists(schedule_of_model(session, model)) from None
    return schedule


def schedule_of_model(session: Session, model: RegisteredModel) -> TrainingSchedule | None:
    """The model's schedule, if it has one."""
    return session.execute(
        select(TrainingSchedule).where(TrainingSchedule.registered_model_id == model.id)
    ).scalar_one_or_none()


def get_schedule(session: Session, ref: str) -> TrainingSchedule:
    """A schedule by id, unique id prefix (6+ characters) or its model's name."""
    schedule = session.get(TrainingSchedule, ref)
    if schedule is not None:
        return schedule
    model = model_by_name(session, ref)
    if model is not None:
        schedule = schedule_of_model(session, model)
        if schedule is None:
            raise LookupError(f"model {ref!r} has no schedule")
        return schedule
    schedule = by_id_prefix(session, TrainingSchedule, ref, "schedule")
    if schedule is None:
        raise LookupError(f"no schedule with id or model name {ref!r}")
    return schedule


def schedule_for_deployment(session: Session, deployment_id: str) -> TrainingSchedule | None:
    """The schedule whose Prefect deployment this is, if any."""
    return session.execute(
        select(TrainingSchedule).where(TrainingSchedule.prefect_deployment_id == deployment_id)
    ).scalar_one_or_none()


def list_schedules(session: Session) -> list[TrainingSchedule]:
    """Every schedule, by model name."""
    return list(session.execute(
        select(TrainingSchedule).join(RegisteredModel).order_by(RegisteredModel.name)
    ).scalars())


def set_status(
    session: Session, schedule: TrainingSchedule, status: ScheduleStatus, reason: str | None,
) -> TrainingSchedule:
    """Record a status change and why. Consecutive failures count from the last change."""
    schedule.status = status
    schedule.status_reason = reason
    schedule.status_changed_at = utcnow()
    if status is not ScheduleStatus.ACTIVE:
        schedule.next_run_at = None
    session.flush()
    return schedule


def schedule_runs(session: Session, schedule: TrainingSchedule) -> list[TrainingRun]:
    """The schedule's runs, newest first."""
    return list(session.execute(
        select(TrainingRun).where(TrainingRun.schedule_id == schedule.id)
        .order_by(TrainingRun.run_number.desc())
    ).scalars())


def refresh_statistics(
    session: Session, schedule: TrainingSchedule, next_run_at: dt.datetime | None = None,
) -> TrainingSchedule:
    """Recount total/successful/failed/skipped runs, last_run_at and consecutive failures.

    The counting rules are `retrain.domain.schedule.rules.statistics`: consecutive failures
    count only runs created since the schedule's last status change (a resume starts
    afresh). `next_run_at` replaces the stored one when given (None when the schedule is
    not active).
    """
    outcomes = [(RunStatus(run.status), aware(run.started_at or run.created))
                for run in schedule_runs(session, schedule)]
    since = aware(schedule.status_changed_at) or aware(schedule.created)
    counted = statistics(outcomes, since)
    schedule.successful_runs = counted.successful_runs
    schedule.failed_runs = counted.failed_runs
    schedule.total_runs = counted.total_runs
    schedule.skipped_runs = counted.skipped_runs
    schedule.last_run_at = counted.last_run_at
    schedule.consecutive_failures = counted.consecutive_failures
    if ScheduleStatus(schedule.status) is ScheduleStatus.ACTIVE:
        schedule.next_run_at = next_run_at
    else:
        schedule.next_run_at = None
    session.flush()
    return schedule


# --- translation between the store row and the spec -------------------------------------------

def row_fields(spec: ScheduleSpec) -> dict[str, Any]:
    """The seed 003 columns that hold `spec` (an hourly minute is stored as time 00:MM)."""
    hourly = spec.type is ScheduleType.HOURLY
    time = f"00:{spec.minute:02d}" if hourly else spec.time
    return {
        "schedule_type": spec.type.value,
        "scheduled_datetime": spec.at.astimezone(dt.timezone.utc) if spec.at else None,
        "schedule_time": time,
        "schedule_day_of_week": spec.day_of_week,
        "schedule_day_of_month": spec.day_of_month,
        "last_day_of_month": spec.last_day_of_month,
        "schedule_timezone": spec.timezone,
    }


def spec_of(row: TrainingSchedule) -> ScheduleSpec:
    """The ScheduleSpec a store row holds."""
    kind = ScheduleType(row.schedule_type)
    hourly = kind is ScheduleType.HOURLY
    return ScheduleSpec(
        type=kind, timezone=row.schedule_timezone,
        at=aware(row.scheduled_datetime),
        minute=int(row.schedule_time[3:]) if hourly and row.schedule_time else None,
        time=None if hourly else row.schedule_time,
        day_of_week=row.schedule_day_of_week, day_of_month=row.schedule_day_of_month,
        last_day_of_month=row.last_day_of_month,
    )


def slug_for(model_name: str) -> str:
    """The schedule's stable slug (its deployment name and Prefect schedule slug)."""
    return f"schedule-{model_name}"


def refresh(session: Session, row: TrainingSchedule,
            now: dt.datetime | None = None) -> TrainingSchedule:
    """Recount the statistics; a once schedule whose run has finished is completed."""
    now = now or utcnow()
    spec = spec_of(row)
    refresh_statistics(session, row, next_run(spec, now))
    if (spec.type is ScheduleType.ONCE and ScheduleStatus(row.status) is ScheduleStatus.ACTIVE
            and (row.total_runs or row.skipped_runs) and row.next_run_at is None):
        set_status(session, row, ScheduleStatus.COMPLETED, "its one run has finished")
    return row


def link_run(
    session: Session, run: TrainingRun, deployment_id: str | None,
) -> TrainingSchedule | None:
    """Attach a run to the schedule whose deployment started it, if any."""
    if deployment_id is None:
        return None
    row = schedule_for_deployment(session, str(deployment_id))
    if row is not None and run.schedule_id is None:
        run.schedule_id = row.id
    return row


def refresh_for_run(session: Session, run: TrainingRun) -> TrainingSchedule | None:
    """Recount the statistics of the run's schedule (called when a run ends)."""
    if run.schedule_id is None:
        return None
    row = session.get(TrainingSchedule, run.schedule_id)
    return refresh(session, row) if row is not None else None
