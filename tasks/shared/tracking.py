"""Lifecycle sync: the flow, its stage tasks and the trainer write the run record as they go.

The record is found by the Prefect flow run id, so tasks need no extra parameter. Writes
are idempotent (see `records/runs.py`): a retried task or hook never duplicates rows. A
failure to write the record is logged and never fails the pipeline itself.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from tasks.shared import events
from tasks.shared.config import PipelineConfig, with_overrides
from tasks.shared.records import runs
from tasks.shared.records.schemas import RunStatus, StageStatus
from tasks.shared.refs import EpochMetrics, TrainerAttempt, TrainerOutput
from tasks.shared.settings import get_settings

logger = logging.getLogger("retrain.tracking")


@lru_cache(maxsize=4)
def _sessions(url: str) -> sessionmaker[Session]:
    from tasks.shared.records.database import session_maker
    from tasks.shared.records.migrate import upgrade

    upgrade(url)  # once per process and store: the embedded default needs no set-up step
    return session_maker(url)


def sessions() -> sessionmaker[Session]:
    """Sessions on this process's store (migrated on first use)."""
    return _sessions(get_settings().resolved_database_url())


def open_run(config: PipelineConfig, flow_run_id: str, run_id: str | None = None,
             deployment_id: str | None = None) -> str:
    """The run record of this flow run, marked running.

    `run_id` names a record made beforehand (`retrain runs start/rerun`); the flow run is
    attached to it. Without one, the record is created on first call. A run started by a
    schedule's deployment (`deployment_id`) is linked to that schedule.
    """
    from tasks.shared.scheduling import link_run

    with sessions().begin() as session:
        run = runs.run_for_flow_run(session, flow_run_id)
        if run is None and run_id is not None:
            run = runs.get_run(session, run_id)
            if run.flow_run_id not in (None, flow_run_id):
                raise ValueError(
                    f"run {run.name} #{run.run_number} belongs to flow run {run.flow_run_id}"
                )
            run.flow_run_id = flow_run_id
        if run is None:
            run = runs.create_run(
                session, config.model_name, config.model_dump(mode="json", by_alias=True),
                model_type=model_type_of(config), flow_run_id=flow_run_id,
            )
        link_run(session, run, deployment_id)
        runs.set_status(session, run.id, RunStatus.RUNNING)
        return run.id


def model_type_of(config: PipelineConfig) -> str:
    """The registered model's type: the recommender's, or `user_module`."""
    return config.model.type if config.model else "user_module"


def _with_run(flow_run_id: Any, action) -> None:
    """Apply `action(session, run)` to the flow run's record, if it has one."""
    if flow_run_id is None:
        return
    try:
        with sessions().begin() as session:
            run = runs.run_for_flow_run(session, str(flow_run_id))
            if run is not None:
                action(session, run)
    except Exception:  # the record is advisory to the pipeline; never fail a stage over it
        logger.warning("could not update the run record", exc_info=True)


def record_stage(flow_run_id: Any, stage: str, status: StageStatus, *,
                 seconds: float | None = None, message: str | None = None,
                 output_uri: str | None = None) -> None:
    """A stage started, finished, hit the cache or failed; a finished one is an event."""
    def action(session: Session, run) -> None:
        runs.record_stage(session, run.id, stage, status, seconds=seconds, message=message,
                          output_uri=output_uri)
        if status in (StageStatus.COMPLETED, StageStatus.CACHED):
            events.emit(events.STAGE_COMPLETED, run, {
                "stage": stage, "seconds": seconds, "cached": status == StageStatus.CACHED,
                "output_uri": output_uri})
    _with_run(flow_run_id, action)


def record_cached(task: Any, task_run: Any, state: Any) -> None:
    """on_completion hook of stage tasks: a cache hit never runs the task body."""
    if state.name != "Cached":
        return
    output_uri = None
    try:
        output = state.result(raise_on_failure=False)
        # Artifacts live at <output_dir>/<key>: the shared output directory of the producer.
        uris = [artifact.uri for artifact in output.artifacts.values()]
        output_uri = uris[0].rstrip("/").rsplit("/", 1)[0] if uris else None
    except Exception:  # the stage row is still worth recording without its directory
        logger.warning("could not read the cached output of %s", task.name, exc_info=True)
    record_stage(task_run.flow_run_id, task.name, StageStatus.CACHED, seconds=0.0,
                 output_uri=output_uri)


class StoreEpochSink:
    """Epoch sink (tasks.trainer.epochs) that writes each epoch to the run record."""

    def __init__(self, flow_run_id: Any):
        self._flow_run_id = flow_run_id

    def on_epoch(self, record: EpochMetrics) -> None:
        """One TrainingMetricsHistory row per epoch (a retried epoch replaces its row)."""
        def action(session: Session, run) -> None:
            runs.record_epoch(session, run.id, record.epoch, record.total_epochs,
                              record.metrics, record.seconds)
            events.emit(events.EPOCH_COMPLETED, run, {
                "epoch": record.epoch, "total_epochs": record.total_epochs,
                "metrics": record.metrics, "seconds": record.seconds})
        _with_run(self._flow_run_id, action)


def record_attempt(flow_run_id: Any, attempt: TrainerAttempt) -> None:
    """A Trainer attempt was submitted or ended: its row on the run record."""
    _with_run(flow_run_id, lambda session, run: runs.record_attempt(session, run.id, attempt))


def record_trainer_devices(flow_run_id: Any, output: TrainerOutput) -> None:
    """The GPUs the Trainer saw and the strategy it trained with, on the run record."""
    _with_run(flow_run_id, lambda session, run: runs.record_trainer_devices(
        session, run.id, output.strategy, output.replicas, output.gpus_visible))


def _record_cost(run) -> None:
    """The run's cost from its GPU config and duration (seed 003's price table)."""
    from tasks.shared.costs import actual_cost

    gpu = (run.config or {}).get("gpu") or {}
    if run.duration_seconds is None:
        return
    try:
        run.cost = actual_cost(
            enabled=gpu.get("enabled", False), count=gpu.get("count", 1), type=gpu.get("type"),
            preemptible=gpu.get("preemptible", False), machine_type=gpu.get("machine_type"),
            seconds=run.duration_seconds,
        )
    except ValueError as exc:  # an unpriced machine leaves the cost empty, and says why
        logger.warning("no cost for run %s: %s", run.name, exc)


def _refresh_schedule(session: Session, run) -> None:
    """A scheduled run ended: recount its schedule's statistics. In a savepoint, so a
    failed recount never loses the run's own outcome (the next run's recount catches up)."""
    from tasks.shared.scheduling import refresh_for_run

    try:
        with session.begin_nested():
            refresh_for_run(session, run)
    except Exception:
        logger.warning("could not recount the schedule of run %s", run.id, exc_info=True)


def _end(flow_run: Any, status: RunStatus, message: str | None) -> None:
    def action(session: Session, run) -> None:
        runs.end_run(session, run.id, status, message)
        _record_cost(run)
        _refresh_schedule(session, run)
    _with_run(flow_run.id, action)


def on_flow_running(flow: Any, flow_run: Any, state: Any) -> None:
    """Flow hook: create (or resume) the run record as the flow starts running."""
    try:
        config = with_overrides(PipelineConfig.model_validate(flow_run.parameters["config"]),
                                flow_run.parameters.get("overrides"))
        open_run(config, str(flow_run.id), flow_run.parameters.get("run_id"),
                 str(flow_run.deployment_id) if flow_run.deployment_id else None)
    except Exception:
        logger.warning("could not open the run record", exc_info=True)


def on_flow_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """Flow hook: the run failed (a stage raised)."""
    _end(flow_run, RunStatus.FAILED, state.message)


def on_flow_crashed(flow: Any, flow_run: Any, state: Any) -> None:
    """Flow hook: the process or infrastructure died."""
    _end(flow_run, RunStatus.CRASHED, state.message)


def on_flow_cancelled(flow: Any, flow_run: Any, state: Any) -> None:
    """Flow hook: the run was cancelled."""
    _end(flow_run, RunStatus.CANCELLED, state.message)


def on_flow_completion(flow: Any, flow_run: Any, state: Any) -> None:
    """Flow hook: completed (pushed), not blessed or skipped as late, with metrics, blessing
    and version; each outcome is also an event."""
    try:
        summary = state.result(raise_on_failure=False)
    except Exception:
        summary = None

    def action(session: Session, run) -> None:
        fields: dict[str, Any] = {}
        if summary is not None and hasattr(summary, "metrics"):
            blessing = summary.blessing
            fields = {
                "metrics": summary.metrics,
                "blessed": summary.blessed,
                "blessing": blessing.model_dump(mode="json") if blessing else None,
                "forced_reason": blessing.forced_reason if blessing else None,
                "registered_version": summary.push.registered_version,
                "mlflow_run_id": summary.push.mlflow_run_id,
                "artifacts": {"serving_uri": summary.push.serving_uri,
                              "statistics_report": summary.statistics_report},
            }
        if state.name == "Skipped":
            runs.end_run(session, run.id, RunStatus.SKIPPED, state.message)
            events.emit(events.RUN_SKIPPED, run, {"reason": state.message,
                                                  "lateness_seconds": run.lateness_seconds})
            _refresh_schedule(session, run)
            return
        status = RunStatus.NOT_BLESSED if state.name == "NotBlessed" else RunStatus.COMPLETED
        runs.set_status(session, run.id, status, **fields)
        if fields.get("registered_version"):
            # The Pusher made this version the champion: it is the one serving now.
            runs.mark_deployed(session, run.registered_model, fields["registered_version"])
        _record_cost(run)
        _refresh_schedule(session, run)
        _emit_outcome(run, state, fields)
    _with_run(flow_run.id, action)


def _emit_outcome(run, state: Any, fields: dict[str, Any]) -> None:
    metrics = fields.get("metrics")
    if fields.get("blessed"):
        events.emit(events.MODEL_BLESSED, run, {"metrics": metrics,
                                                "forced_reason": fields.get("forced_reason")})
    elif state.name == "NotBlessed":
        events.emit(events.MODEL_NOT_BLESSED, run, {"reason": state.message, "metrics": metrics})
    if fields.get("registered_version"):
        artifacts = fields.get("artifacts") or {}
        events.emit(events.MODEL_PUSHED, run, {
            "version": fields["registered_version"], "serving_uri": artifacts.get("serving_uri"),
            "mlflow_run_id": fields.get("mlflow_run_id")})
