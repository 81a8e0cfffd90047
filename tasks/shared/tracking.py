"""Lifecycle sync: the flow's state hooks, the stage tasks and the Trainer write the run
record as they go (through `retrain.services.lifecycle`) and announce it as events.

The record is found by the Prefect flow run id, so tasks need no extra parameter. A failure
to write the record is logged and never fails the pipeline itself.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, TypeVar

from retrain.domain.config import PipelineConfig, with_overrides
from retrain.domain.data_gates import DataFinding
from retrain.domain.refs import EpochMetrics, TrainerAttempt, TrainerOutput
from retrain.domain.stages import Stage
from retrain.domain.status import RunStatus, StageStatus
from retrain.adapters import mlflow_registry as registry
from retrain.adapters import prefect as prefect_api
from retrain.services import lifecycle, overlap
from retrain.services.views import RunIdentity, RunOutcome
from tasks.shared import events

logger = logging.getLogger("retrain.tracking")

T = TypeVar("T")


def _advisory(write: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """Write to the record; the record is advisory to the pipeline, never fail a stage."""
    try:
        return write(*args, **kwargs)
    except Exception:
        logger.warning("could not update the run record", exc_info=True)
        return None


def record_stage(flow_run_id: Any, stage: Stage | str, status: StageStatus, *,
                 seconds: float | None = None, message: str | None = None,
                 output_uri: str | None = None) -> None:
    """A stage started, finished, hit the cache or failed; a finished one is an event."""
    stage = Stage(stage)
    run = _advisory(lifecycle.record_stage, flow_run_id, stage, status, seconds=seconds,
                    message=message, output_uri=output_uri)
    if status in (StageStatus.COMPLETED, StageStatus.CACHED):
        events.emit(events.STAGE_COMPLETED, run, {
            "stage": stage.value, "seconds": seconds, "cached": status == StageStatus.CACHED,
            "output_uri": output_uri})


def claim_output(flow_run_id: Any, stage: Stage, output_uri: str,
                 say: Callable[[str], Any]) -> int | None:
    """Wait until no other live run is writing `output_uri`, then record `stage` running
    there; the number of the run it waited for, None if it did not wait (or the record
    could not be reached: the stage then runs as it would have without one)."""
    return _advisory(overlap.wait_for_output, str(flow_run_id), stage, output_uri, say)


def announce_data_findings(flow_run_id: Any, findings: list[DataFinding],
                           baseline: str | None, *, stopped: bool) -> None:
    """Event `retrain.data.drift` when a data gate flagged features (none: no event)."""
    if not findings:
        return
    run = _advisory(lifecycle.identify_flow_run, flow_run_id)
    events.emit(events.DATA_DRIFT, run, {
        "findings": [finding.model_dump(mode="json") for finding in findings],
        "features": sorted({finding.feature for finding in findings}),
        "baseline": baseline, "stopped": stopped})


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
        run = _advisory(lifecycle.record_epoch, self._flow_run_id, record)
        events.emit(events.EPOCH_COMPLETED, run, {
            "epoch": record.epoch, "total_epochs": record.total_epochs,
            "metrics": record.metrics, "seconds": record.seconds})


def record_attempt(flow_run_id: Any, attempt: TrainerAttempt) -> None:
    """A Trainer attempt was submitted or ended: its row on the run record."""
    _advisory(lifecycle.record_attempt, flow_run_id, attempt)


def record_trainer_devices(flow_run_id: Any, output: TrainerOutput) -> None:
    """The GPUs the Trainer saw and the strategy it trained with, on the run record."""
    _advisory(lifecycle.record_trainer_devices, flow_run_id, output)


def on_flow_running(flow: Any, flow_run: Any, state: Any) -> None:
    """Flow hook: create (or resume) the run record as the flow starts running."""
    try:
        config = with_overrides(PipelineConfig.model_validate(flow_run.parameters["config"]),
                                flow_run.parameters.get("overrides"))
        lifecycle.open_run(config, str(flow_run.id), flow_run.parameters.get("run_id"),
                           str(flow_run.deployment_id) if flow_run.deployment_id else None)
        overlap.start_heartbeat(str(flow_run.id))
        registry.warm_up(config.model_name)  # the Evaluator's baseline lookup, paid early
    except Exception:
        logger.warning("could not open the run record", exc_info=True)


def on_flow_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """Flow hook: the run failed (a stage raised)."""
    overlap.stop_heartbeat(flow_run.id)
    _advisory(lifecycle.end_run, flow_run.id, RunStatus.FAILED, state.message)


def on_flow_crashed(flow: Any, flow_run: Any, state: Any) -> None:
    """Flow hook: the process or infrastructure died."""
    overlap.stop_heartbeat(flow_run.id)
    _advisory(lifecycle.end_run, flow_run.id, RunStatus.CRASHED, state.message)


def on_flow_cancelled(flow: Any, flow_run: Any, state: Any) -> None:
    """Flow hook: the run was cancelled; so is the stage it stopped (not 'Crashed')."""
    overlap.stop_heartbeat(flow_run.id)
    _advisory(lifecycle.end_run, flow_run.id, RunStatus.CANCELLED, state.message)
    _advisory(prefect_api.cancel_task_runs, flow_run.id,
              f"its flow run was cancelled: {state.message or 'no reason given'}")


def outcome_of(state: Any) -> RunOutcome:
    """What the flow's final state and its RunSummary say about the run."""
    if state.name == "Skipped":
        return RunOutcome(status=RunStatus.SKIPPED, message=state.message)
    status = RunStatus.NOT_BLESSED if state.name == "NotBlessed" else RunStatus.COMPLETED
    try:
        summary = state.result(raise_on_failure=False)
    except Exception:
        summary = None
    if summary is None or not hasattr(summary, "metrics"):
        return RunOutcome(status=status, message=state.message)
    blessing = summary.blessing
    return RunOutcome(
        status=status, message=state.message, metrics=summary.metrics,
        blessed=summary.blessed,
        blessing=blessing.model_dump(mode="json") if blessing else None,
        forced_reason=blessing.forced_reason if blessing else None,
        registered_version=summary.push.registered_version,
        mlflow_run_id=summary.push.mlflow_run_id,
        artifacts={"serving_uri": summary.push.serving_uri,
                   "statistics_report": summary.statistics_report,
                   "data_findings": [f.message for f in summary.data_findings],
                   "drift_baseline": summary.drift_baseline,
                   "best_epoch": summary.best_epoch,
                   "best_epoch_metric": summary.best_epoch_metric},
    )


def on_flow_completion(flow: Any, flow_run: Any, state: Any) -> None:
    """Flow hook: completed (pushed), not blessed or skipped as late, with metrics, blessing
    and version; each outcome is also an event."""
    overlap.stop_heartbeat(flow_run.id)
    outcome = outcome_of(state)
    run = _advisory(lifecycle.finish_run, flow_run.id, outcome)
    _emit_outcome(run, outcome)


def _emit_outcome(run: RunIdentity | None, outcome: RunOutcome) -> None:
    if outcome.status == RunStatus.SKIPPED:
        events.emit(events.RUN_SKIPPED, run, {
            "reason": outcome.message,
            "lateness_seconds": run.lateness_seconds if run else None})
        return
    if outcome.blessed:
        events.emit(events.MODEL_BLESSED, run, {"metrics": outcome.metrics,
                                                "forced_reason": outcome.forced_reason})
    elif outcome.status == RunStatus.NOT_BLESSED:
        events.emit(events.MODEL_NOT_BLESSED, run, {"reason": outcome.message,
                                                    "metrics": outcome.metrics})
