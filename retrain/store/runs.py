"""Training runs: create (with a per-model run number), transitions, stages, epochs.

Module-level functions that take an explicit session (Prefect's `server/models/*.py`
style); the caller owns the transaction. Every write is idempotent, so a retried task
never duplicates rows: stage and epoch rows are keyed by (run, stage) and (run, epoch).
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from retrain.store.orm import (
    new_id,
    RegisteredModel,
    TrainerAttemptRecord,
    TrainingMetricsHistory,
    TrainingRun,
    TrainingStage,
)
from retrain.domain.stages import STAGES, Stage
from retrain.domain.status import TRANSITIONS, RunStatus, StageStatus, TransitionError
from retrain.domain.refs import TrainerAttempt
from retrain.domain.clock import aware, utcnow


T = TypeVar("T")


def _insert(session: Session):
    """The dialect's INSERT, which has ON CONFLICT DO NOTHING (SQLite and PostgreSQL)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def ensure_registered_model(session: Session, name: str, model_type: str | None) -> RegisteredModel:
    """The registered model of this name, created if new (safe under concurrent creators)."""
    insert = _insert(session)
    session.execute(
        insert(RegisteredModel)
        .values(id=new_id(), name=name, model_type=model_type,
                last_run_number=0, deployed=False)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    return session.execute(select(RegisteredModel).where(RegisteredModel.name == name)).scalar_one()


def next_run_number(session: Session, registered_model_id: str) -> int:
    """Allocate the next run number: one atomic UPDATE … RETURNING, so no two runs share one."""
    return session.execute(
        update(RegisteredModel)
        .where(RegisteredModel.id == registered_model_id)
        .values(last_run_number=RegisteredModel.last_run_number + 1)
        .returning(RegisteredModel.last_run_number)
    ).scalar_one()


def create_run(
    session: Session,
    model_name: str,
    config: dict[str, Any],
    *,
    model_type: str | None = None,
    name: str | None = None,
    status: RunStatus = RunStatus.PENDING,
    flow_run_id: str | None = None,
    estimated_cost: float | None = None,
    estimated_seconds: float | None = None,
    description: str | None = None,
    source_run_id: str | None = None,
) -> TrainingRun:
    """A new run of `model_name` with the next run number and eight pending stages.

    The run's name defaults to the model name; a rerun keeps its source's name, so runs are
    told apart by `name #run_number`.
    """
    model = ensure_registered_model(session, model_name, model_type)
    number = next_run_number(session, model.id)
    run = TrainingRun(
        registered_model_id=model.id,
        name=name or model_name,
        description=description,
        run_number=number,
        config=config,
        status=status,
        flow_run_id=flow_run_id,
        estimated_cost=estimated_cost,
        estimated_seconds=estimated_seconds,
        source_run_id=source_run_id,
        stages=[TrainingStage(stage=stage, position=stage.position, status=StageStatus.PENDING)
                for stage in STAGES],
    )
    session.add(run)
    session.flush()
    return run


# A run may be named by a unique prefix of its id, as `git` names commits.
MIN_PREFIX = 6


def get_run(session: Session, run_id: str) -> TrainingRun:
    """The run with this id (or unique id prefix), or LookupError naming it.

    Deleted runs are found too: operations refuse them with that reason.
    """
    run = session.get(TrainingRun, run_id) or by_id_prefix(session, TrainingRun, run_id, "run")
    if run is None:
        raise LookupError(f"no training run with id {run_id!r}")
    return run


def by_id_prefix(session: Session, table: type[T], prefix: str, what: str) -> T | None:
    """The one row of `table` whose id starts with `prefix` (MIN_PREFIX+ hex characters),
    None if none; LookupError naming `what` if several do."""
    if len(prefix) < MIN_PREFIX or any(c not in "0123456789abcdef-" for c in prefix.lower()):
        return None
    matches = list(session.execute(
        select(table).where(table.id.startswith(prefix.lower())).limit(2)
    ).scalars())
    if len(matches) > 1:
        raise LookupError(f"{what} id prefix {prefix!r} is ambiguous; give more characters")
    return matches[0] if matches else None


def run_for_flow_run(session: Session, flow_run_id: str) -> TrainingRun | None:
    """The run recorded for a Prefect flow run, if any."""
    return session.execute(
        select(TrainingRun).where(TrainingRun.flow_run_id == flow_run_id)
    ).scalar_one_or_none()


def set_status(session: Session, run_id: str, status: RunStatus, **fields: Any) -> TrainingRun:
    """Move a run to `status` (same status again is a no-op); refuse what the lifecycle forbids."""
    run = get_run(session, run_id)
    current = run.status
    if status != current:
        if status not in TRANSITIONS[current]:
            raise TransitionError(
                f"run {run.name} (#{run.run_number}) is {current.value}; it cannot become "
                f"{status.value}"
            )
        run.status = status
        if status == RunStatus.RUNNING and run.started_at is None:
            run.started_at = utcnow()
        if status.terminal:
            run.finished_at = utcnow()
            if run.started_at is not None:
                run.duration_seconds = (run.finished_at - aware(run.started_at)).total_seconds()
    for key, value in fields.items():
        setattr(run, key, value)
    session.flush()
    return run


def record_stage(
    session: Session,
    run_id: str,
    stage: Stage | str,
    status: StageStatus,
    *,
    seconds: float | None = None,
    message: str | None = None,
    output_uri: str | None = None,
) -> TrainingStage:
    """Set one stage's status (and the run's current stage); repeating it changes nothing.

    `stage` may be given by its name ("Trainer"); an unknown name is a ValueError naming
    the stages.
    """
    try:
        stage = Stage(stage)
    except ValueError:
        raise ValueError(
            f"unknown stage {stage!r}; stages are {[s.value for s in STAGES]}"
        ) from None
    run = get_run(session, run_id)
    row = next(s for s in run.stages if s.stage == stage)
    now = utcnow()
    if status == StageStatus.RUNNING and row.started_at is None:
        row.started_at = now
    if status in (StageStatus.COMPLETED, StageStatus.CACHED, StageStatus.FAILED,
                  StageStatus.SKIPPED):
        row.finished_at = row.finished_at or now
    row.status = status
    if seconds is not None:
        row.seconds = seconds
    if message is not None:
        row.message = message
    if output_uri is not None:
        row.output_uri = output_uri
    run.current_stage = stage
    session.flush()
    return row


def end_run(session: Session, run_id: str, status: RunStatus, message: str | None) -> TrainingRun:
    """End a run that did not finish: its running stage failed, pending ones were skipped.

    The error stage is the stage that was running (else the last one reached; none for a
    run that never reached a stage, e.g. crashed at submission).
    """
    run = get_run(session, run_id)
    failed = next((s for s in run.stages
                   if s.status in (StageStatus.RUNNING, StageStatus.FAILED)), None)
    reached = run.current_stage  # before skipping the rest moves it
    for stage in run.stages:
        if stage.status in (StageStatus.PENDING, StageStatus.RUNNING):
            record_stage(session, run.id, stage.stage, StageStatus.SKIPPED
                         if stage.status == StageStatus.PENDING else StageStatus.FAILED)
    run.current_stage = reached
    return set_status(
        session, run.id, status,
        error_stage=failed.stage if failed else reached,
        error_message=(message or status.value)[:4000],
    )


def record_epoch(
    session: Session, run_id: str, epoch: int, total_epochs: int, metrics: dict[str, float],
    seconds: float | None = None,
) -> TrainingMetricsHistory:
    """Store one epoch's metrics (replacing a retried epoch's row) and the run's progress."""
    run = get_run(session, run_id)
    row = next((e for e in run.epochs if e.epoch == epoch), None)
    if row is None:
        row = TrainingMetricsHistory(run_id=run.id, epoch=epoch, metrics=metrics, seconds=seconds)
        run.epochs.append(row)
    else:
        row.metrics, row.seconds = metrics, seconds
    run.current_epoch = max(run.current_epoch or 0, epoch)
    run.total_epochs = total_epochs
    session.flush()
    return row


def record_attempt(session: Session, run_id: str, attempt: TrainerAttempt) -> TrainerAttemptRecord:
    """Store a Trainer attempt as it is submitted, and again when it ends (by number)."""
    run = get_run(session, run_id)
    row = next((a for a in run.trainer_attempts if a.number == attempt.number), None)
    if row is None:
        row = TrainerAttemptRecord(run_id=run.id, number=attempt.number)
        run.trainer_attempts.append(row)
    fields = attempt.model_dump(exclude={"number"})
    for key, value in fields.items():
        setattr(row, key, value)
    session.flush()
    return row


def record_trainer_devices(session: Session, run_id: str, strategy: str | None,
                           replicas: int | None, gpus_visible: list[str]) -> TrainingRun:
    """How the Trainer ran: the distribution strategy, its replicas and the GPUs it saw."""
    run = get_run(session, run_id)
    run.trainer_strategy, run.trainer_replicas = strategy, replicas
    run.gpus_visible = list(gpus_visible)
    session.flush()
    return run


def list_runs(
    session: Session, *, model_name: str | None = None, status: RunStatus | None = None,
    limit: int = 50,
) -> list[TrainingRun]:
    """Newest runs first (deleted runs left out), optionally of one model and/or status."""
    query = (
        select(TrainingRun).join(RegisteredModel)
        .where(TrainingRun.deleted_at.is_(None))
        .order_by(TrainingRun.created.desc(), TrainingRun.run_number.desc())
    )
    if model_name is not None:
        query = query.where(RegisteredModel.name == model_name)
    if status is not None:
        query = query.where(TrainingRun.status == status)
    return list(session.execute(query.limit(limit)).scalars())


def list_models(session: Session) -> list[RegisteredModel]:
    """Every registered model, by name."""
    return list(session.execute(select(RegisteredModel).order_by(RegisteredModel.name)).scalars())


def model_by_name(session: Session, name: str) -> RegisteredModel | None:
    """The registered model of this name, if there is one."""
    return session.execute(
        select(RegisteredModel).where(RegisteredModel.name == name)
    ).scalar_one_or_none()


def previous_finished_run(session: Session, model_name: str, *,
                          before: int | None = None) -> TrainingRun | None:
    """The model's newest live run that finished (completed or not blessed), optionally
    numbered below `before`: the baseline its next run's data is compared with."""
    query = (
        select(TrainingRun).join(RegisteredModel)
        .where(RegisteredModel.name == model_name, TrainingRun.deleted_at.is_(None),
               TrainingRun.status.in_([RunStatus.COMPLETED, RunStatus.NOT_BLESSED]))
        .order_by(TrainingRun.run_number.desc()).limit(1)
    )
    if before is not None:
        query = query.where(TrainingRun.run_number < before)
    return session.execute(query).scalar_one_or_none()


def runs_sharing_output(session: Session, output_uri: str, *, except_run: str) -> int:
    """How many live runs other than `except_run` use a stage output (cache hits share them)."""
    return len(session.execute(
        select(TrainingStage.run_id).join(TrainingRun)
        .where(TrainingStage.output_uri == output_uri, TrainingStage.run_id != except_run,
               TrainingRun.deleted_at.is_(None))
    ).all())


def template_run(session: Session, model: RegisteredModel) -> TrainingRun | None:
    """The run later runs of `model` start from: the last edited one, else the newest live one."""
    if model.template_run_id:
        run = session.get(TrainingRun, model.template_run_id)
        if run is not None and run.deleted_at is None:
            return run
    return session.execute(
        select(TrainingRun)
        .where(TrainingRun.registered_model_id == model.id, TrainingRun.deleted_at.is_(None))
        .order_by(TrainingRun.run_number.desc()).limit(1)
    ).scalar_one_or_none()


def finished_runs(session: Session, model_type: str | None = None) -> list[TrainingRun]:
    """Live runs that ended with metrics (completed or not blessed), optionally of one type."""
    query = (
        select(TrainingRun).join(RegisteredModel)
        .where(TrainingRun.deleted_at.is_(None), TrainingRun.metrics.is_not(None),
               TrainingRun.status.in_([RunStatus.COMPLETED, RunStatus.NOT_BLESSED]))
    )
    if model_type is not None:
        query = query.where(RegisteredModel.model_type == model_type)
    return list(session.execute(query).scalars())


def mark_deployed(
    session: Session, model: RegisteredModel, version: str | None, *, latest: str | None = None,
) -> None:
    """Record which version serves (the registry's champion) and the latest version.

    Runs that registered (or re-confirmed) the champion version carry the deployed flag;
    no run does when nothing serves.
    """
    model.champion_version = version
    model.deployed = version is not None
    model.deployed_version = version
    model.latest_version = latest or _max_version(model.latest_version, version)
    for run in model.runs:
        run.deployed = version is not None and run.registered_version == version
    session.flush()


def _max_version(*versions: str | None) -> str | None:
    numbers = [int(v) for v in versions if v is not None and v.isdigit()]
    return str(max(numbers)) if numbers else None
