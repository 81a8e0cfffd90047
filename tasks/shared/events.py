"""Prefect events the pipeline emits, with the run's ids, for automations and the UI.

Names (the "new model available" signal seed 001 sent to its inference store is
`retrain.model.pushed`):

  retrain.stage.completed      a stage finished (payload: stage, seconds, cached)
  retrain.data.drift           a data gate flagged features: drift, skew, empty or constant
                               (payload: findings, baseline, stopped)
  retrain.epoch.completed      the Trainer finished an epoch (payload: epoch, total, metrics)
  retrain.model.blessed        the Evaluator blessed the model (payload: metrics)
  retrain.model.not-blessed    it did not (payload: reason, metrics); nothing was pushed
  retrain.model.pushed         the Pusher registered and published a version (payload:
                               version, serving_uri, replaced_version)
  retrain.model.deployed       a registered version was made champion and served
  retrain.model.undeployed     nothing serves for the model any more
  retrain.model.rolled-back    the previous champion serves again
  retrain.run.skipped          a scheduled slot started too late and was skipped
  retrain.run.failed           the failure automation recorded a failed or crashed run
  retrain.schedule.paused      the circuit breaker paused a schedule

The resource is the run record, `retrain.run.<id>`, named `<name> #<number>` and labelled
with the model; related resources are the registered model and, where known, the Prefect
flow run and the schedule. Inside a flow run Prefect adds the flow run, flow and deployment
as related resources itself. Emitting never fails the caller: an event is advisory.
"""

from __future__ import annotations

from typing import Any

from retrain.adapters import prefect_events
from retrain.services.views import RunIdentity

STAGE_COMPLETED = "retrain.stage.completed"
DATA_DRIFT = "retrain.data.drift"
EPOCH_COMPLETED = "retrain.epoch.completed"
MODEL_BLESSED = "retrain.model.blessed"
MODEL_NOT_BLESSED = "retrain.model.not-blessed"
RUN_SKIPPED = "retrain.run.skipped"
RUN_FAILED = "retrain.run.failed"
SCHEDULE_PAUSED = "retrain.schedule.paused"


def run_resource(run: RunIdentity) -> dict[str, str]:
    """The event resource of a run record."""
    return {
        "prefect.resource.id": f"retrain.run.{run.id}",
        "prefect.resource.name": f"{run.name} #{run.run_number}",
        "retrain.model": run.model_name,
        "retrain.run-number": str(run.run_number),
    }


def _related(run: RunIdentity) -> list[dict[str, str]]:
    related = [{
        "prefect.resource.id": f"retrain.model.{run.model_name}",
        "prefect.resource.role": "registered-model",
        "prefect.resource.name": run.model_name,
    }]
    if run.flow_run_id:
        related.append({"prefect.resource.id": f"prefect.flow-run.{run.flow_run_id}",
                        "prefect.resource.role": "flow-run"})
    if run.schedule_id:
        related.append({"prefect.resource.id": f"retrain.schedule.{run.schedule_id}",
                        "prefect.resource.role": "schedule"})
    return related


def emit(name: str, run: RunIdentity | None, payload: dict[str, Any] | None = None) -> None:
    """Emit event `name` about run record `run` with `payload` (nothing without a record)."""
    if run is None:
        return
    prefect_events.emit(name, run_resource(run), _related(run),
                        {"run_id": run.id, "run_name": f"{run.name} #{run.run_number}",
                         "model": run.model_name, **(payload or {})})
