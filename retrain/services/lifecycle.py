"""A run's life on its record: created, opened by its flow run, its stages, epochs and
Trainer attempts, and how it ended.

The flow's hooks and the stage tasks (`tasks/shared/tracking.py`) call these with the
Prefect flow run id, so tasks need no extra parameter. Every write is idempotent (see
`store/runs.py`): a retried task or hook never duplicates rows. Each function owns its
transaction and returns a `RunIdentity` (what an event about the run names), or None when
the flow run has no record.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from sqlalchemy.orm import Session

from retrain.domain.clock import utcnow
from retrain.domain.config import PipelineConfig, with_overrides
from retrain.domain.costs import actual_cost
from retrain.domain.refs import EpochMetrics, TrainerAttempt, TrainerOutput
from retrain.domain.stages import Stage
from retrain.domain.status import RunStatus, StageStatus
from retrain.services.views import RunIdentity, RunOutcome
from retrain.store import runs
from retrain.store import schedules as schedule_store
from retrain.store.orm import TrainingRun
from retrain.store.sessions import sessions

logger = logging.getLogger("retrain.lifecycle")


def new_run(session: Session, config: PipelineConfig, **fields: Any) -> TrainingRun:
    """The one way a run record is made from a config: its snapshot, model type, the next
    run number and eight pending stages (`fields` as `store.runs.create_run` takes them)."""
    return runs.create_run(session, config.model_name, config.snapshot(),
                           model_type=config.model_type.value, **fields)


def open_run(config: PipelineConfig, flow_run_id: str, run_id: str | None = None,
             deployment_id: str | None = None) -> str:
    """The run record of this flow run, marked running.

    `run_id` names a record made beforehand (`retrain runs start/rerun`); the flow run is
    attached to it. Without one, the record is created on first call. A run started by a
    schedule's deployment (`deployment_id`) is linked to that schedule.
    """
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
            run = new_run(session, config, flow_run_id=flow_run_id)
        schedule_store.link_run(session, run, deployment_id)
        runs.set_status(session, run.id, RunStatus.RUNNING, heartbeat_at=utcnow())
        return run.id


def record_unopened(session: Session, flow_run: Any, deployment_id: Any = None) -> TrainingRun:
    """The record of a flow run that ended before its own hooks could open one (crashed at
    submission, its pod never started, its worker killed), made from the flow run's
    parameters so it counts in its model's runs and its schedule's statistics."""
    raw = dict((flow_run.parameters or {}).get("config") or {})
    try:
        config = with_overrides(PipelineConfig.model_validate(raw),
                                (flow_run.parameters or {}).get("overrides"))
        run = new_run(session, config, flow_run_id=str(flow_run.id))
    except ValueError:  # an invalid config is itself the failure; keep what there is
        run = runs.create_run(session, str(raw.get("model_name") or "unknown"), raw,
                              flow_run_id=str(flow_run.id))
    schedule_store.link_run(session, run, deployment_id or flow_run.deployment_id)
    return run


def identify(run_id: str) -> RunIdentity:
    """Who run `run_id` is (LookupError if there is no such run)."""
    with sessions()() as session:
        return RunIdentity.of(runs.get_run(session, run_id))


def _with_run(flow_run_id: Any,
              action: Callable[[Session, TrainingRun], None]) -> RunIdentity | None:
    """Apply `action(session, run)` to the flow run's record, if it has one."""
    if flow_run_id is None:
        return None
    with sessions().begin() as session:
        run = runs.run_for_flow_run(session, str(flow_run_id))
        if run is None:
            return None
        action(session, run)
        return RunIdentity.of(run)


def identify_flow_run(flow_run_id: Any) -> RunIdentity | None:
    """Who the flow run's record is, if it has one."""
    return _with_run(flow_run_id, lambda session, run: None)


def record_stage(flow_run_id: Any, stage: Stage, status: StageStatus, *,
                 seconds: float | None = None, message: str | None = None,
                 output_uri: str | None = None) -> RunIdentity | None:
    """A stage started, finished, hit the cache or failed."""
    return _with_run(flow_run_id, lambda session, run: runs.record_stage(
        session, run.id, stage, status, seconds=seconds, message=message,
        output_uri=output_uri))


def record_epoch(flow_run_id: Any, record: EpochMetrics) -> RunIdentity | None:
    """One TrainingMetricsHistory row per epoch (a retried epoch replaces its row)."""
    return _with_run(flow_run_id, lambda session, run: runs.record_epoch(
        session, run.id, record.epoch, record.total_epochs, record.metrics, record.seconds))


def record_attempt(flow_run_id: Any, attempt: TrainerAttempt) -> RunIdentity | None:
    """A Trainer attempt was submitted or ended: its row on the run record."""
    return _with_run(flow_run_id,
                     lambda session, run: runs.record_attempt(session, run.id, attempt))


def record_trainer_devices(flow_run_id: Any, output: TrainerOutput) -> RunIdentity | None:
    """The GPUs the Trainer saw and the strategy it trained with, on the run record."""
    return _with_run(flow_run_id, lambda session, run: runs.record_trainer_devices(
        session, run.id, output.strategy, output.replicas, output.gpus_visible))


def record_cost(run: TrainingRun) -> None:
    """The run's cost from its GPU config and duration (seed 003's price table)."""
    if run.duration_seconds is None:
        return
    try:
        run.cost = actual_cost(PipelineConfig.from_snapshot(run.config).gpu,
                               seconds=run.duration_seconds)
    except ValueError as exc:  # an unpriced machine (or an unreadable config) leaves it empty
        logger.warning("no cost for run %s: %s", run.name, exc)


def refresh_schedule(session: Session, run: TrainingRun) -> None:
    """A scheduled run ended: recount its schedule's statistics. In a savepoint, so a
    failed recount never loses the run's own outcome (the next run's recount catches up)."""
    try:
        with session.begin_nested():
            schedule_store.refresh_for_run(session, run)
    except Exception:
        logger.warning("could not recount the schedule of run %s", run.id, exc_info=True)


def end_run(flow_run_id: Any, status: RunStatus, message: str | None) -> RunIdentity | None:
    """The run failed, crashed or was cancelled: its stages closed, its cost and its
    schedule's statistics updated."""
    def action(session: Session, run: TrainingRun) -> None:
        runs.end_run(session, run.id, status, message)
        record_cost(run)
        refresh_schedule(session, run)
    return _with_run(flow_run_id, action)


def finish_run(flow_run_id: Any, outcome: RunOutcome) -> RunIdentity | None:
    """The flow run returned: completed (pushed), not blessed or skipped as late."""
    def action(session: Session, run: TrainingRun) -> None:
        if outcome.status == RunStatus.SKIPPED:
            runs.end_run(session, run.id, RunStatus.SKIPPED, outcome.message)
            refresh_schedule(session, run)
            return
        fields = outcome.model_dump(exclude={"status", "message"}, exclude_unset=True)
        # The Pusher recorded its push itself (services/serving.py: the serving change
        # and the deployed flags), when it happened.
        runs.set_status(session, run.id, outcome.status, **fields)
        model = run.registered_model
        # A rerun whose model already serves reports the champion's version: it serves too.
        run.deployed = bool(model.deployed and outcome.registered_version
                            and model.deployed_version == outcome.registered_version)
        record_cost(run)
        refresh_schedule(session, run)
    return _with_run(flow_run_id, action)
