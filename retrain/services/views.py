"""What services return: pydantic views of run records, built inside the service's session.

The CLI and the operation flows read these, never ORM rows (a row outlives its session
badly: lazy relationships fail once it is closed).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field

from retrain.domain.clock import aware
from retrain.domain.costs import CostEstimate
from retrain.domain.data_gates import FeatureDistance
from retrain.domain.recommender import ModelType
from retrain.domain.serving import ModelAction
from retrain.domain.stages import Stage
from retrain.domain.status import AttemptOutcome, RunStatus, ScheduleStatus, StageStatus
from retrain.store.orm import (
    ServingChange,
    TrainerAttemptRecord,
    TrainingMetricsHistory,
    TrainingRun,
    TrainingStage,
)


class RunRef(BaseModel):
    """A run as operations report it."""

    id: str = Field(description="Run id.")
    name: str = Field(description="Run name.")
    run_number: int = Field(description="Per registered model.")
    model_name: str = Field(description="Registered model.")
    status: RunStatus = Field(description="Status after the operation.")
    flow_run_id: str | None = Field(default=None, description="Prefect flow run, once started.")
    estimate: CostEstimate | None = Field(default=None, description="Cost estimate, if any.")
    estimate_note: str | None = Field(
        default=None, description="What the estimate is based on, or why there is none.")

    @classmethod
    def of(cls, run: TrainingRun, **extra: Any) -> RunRef:
        """From a run row (`extra`: the fields a subclass adds, or the estimate)."""
        return cls(id=run.id, name=run.name, run_number=run.run_number,
                   model_name=run.registered_model.name, status=RunStatus(run.status),
                   flow_run_id=run.flow_run_id, **extra)

    @property
    def label(self) -> str:
        """`name #N`, how runs are told apart (a rerun keeps its name)."""
        return f"{self.name} #{self.run_number}"


class StageView(BaseModel):
    """One of a run's eight stages."""

    stage: Stage = Field(description="The TFX stage.")
    status: StageStatus = Field(description="Where the stage is.")
    seconds: float | None = Field(default=None, description="How long it took.")
    message: str | None = Field(default=None, description="Why it failed or was skipped.")
    output_uri: str | None = Field(default=None, description="Its output directory.")

    @classmethod
    def of(cls, row: TrainingStage) -> StageView:
        """From a stage row."""
        return cls(stage=Stage(row.stage), status=StageStatus(row.status), seconds=row.seconds,
                   message=row.message, output_uri=row.output_uri)


class EpochView(BaseModel):
    """Metrics of one finished epoch (what the training curves plot)."""

    epoch: int = Field(description="Epoch number, from 1.")
    metrics: dict[str, Any] = Field(description="Train and val_ metrics of the epoch.")
    seconds: float | None = Field(default=None, description="How long the epoch took.")

    @classmethod
    def of(cls, row: TrainingMetricsHistory) -> EpochView:
        """From an epoch row."""
        return cls(epoch=row.epoch, metrics=dict(row.metrics or {}), seconds=row.seconds)


class AttemptView(BaseModel):
    """One submission of the run's Trainer and how it ended."""

    number: int = Field(description="Attempt number, from 1.")
    gpu_type: str | None = Field(default=None, description="Accelerator asked for.")
    gpu_count: int = Field(description="GPUs asked for; 0 on CPU.")
    outcome: AttemptOutcome = Field(description="How it ended (running: not yet).")
    reason: str | None = Field(default=None, description="Why it ended that way.")
    resumed_from_epoch: int = Field(description="Epochs restored from a checkpoint.")

    @classmethod
    def of(cls, row: TrainerAttemptRecord) -> AttemptView:
        """From an attempt row."""
        return cls(number=row.number, gpu_type=row.gpu_type, gpu_count=row.gpu_count,
                   outcome=AttemptOutcome(row.outcome), reason=row.reason,
                   resumed_from_epoch=row.resumed_from_epoch or 0)


class RunListItem(RunRef):
    """A run as `retrain runs list` shows it."""

    stages: list[StageView] = Field(description="Its stages in pipeline order.")
    created: dt.datetime = Field(description="When the run was recorded.")

    @classmethod
    def of_run(cls, run: TrainingRun) -> RunListItem:
        """From a run row."""
        return cls.of(run, stages=[StageView.of(s) for s in run.stages], created=run.created)


class RunDetail(RunRef):
    """Everything `retrain runs show` prints about one run."""

    description: str | None = Field(default=None, description="What the run is for.")
    deleted_at: dt.datetime | None = Field(default=None, description="When it was deleted.")
    stages: list[StageView] = Field(description="Its stages in pipeline order.")
    error_stage: Stage | None = Field(default=None, description="Stage that failed.")
    error_message: str | None = Field(default=None, description="Why.")
    trainer_strategy: str | None = Field(default=None, description="Distribution strategy.")
    trainer_replicas: int | None = Field(default=None, description="Replicas it trained on.")
    gpus_visible: list[str] = Field(default_factory=list, description="GPUs TensorFlow saw.")
    attempts: list[AttemptView] = Field(description="Trainer submissions, in order.")
    metrics: dict[str, Any] = Field(default_factory=dict, description="Final metrics.")
    epochs: list[EpochView] = Field(description="Per-epoch metrics, in order.")
    blessed: bool | None = Field(default=None, description="The Evaluator's verdict.")
    forced_reason: str | None = Field(default=None, description="Why it was force-blessed.")
    registered_version: str | None = Field(default=None, description="MLflow version pushed.")
    deployed: bool = Field(default=False, description="Its version is serving.")
    estimated_cost: float | None = Field(default=None, description="Estimate at most, USD.")
    cost: float | None = Field(default=None, description="What it cost, USD.")
    duration_seconds: float | None = Field(default=None, description="Wall-clock seconds.")
    statistics_report: str | None = Field(default=None, description="TFDV HTML report.")
    data_findings: list[str] = Field(
        default_factory=list, description="What the data gates warned about (the run went on).")
    drift_baseline: str | None = Field(default=None, description="Run drift was measured against.")
    best_epoch: int | None = Field(default=None, description="The epoch whose model was exported.")
    best_epoch_metric: str | None = Field(
        default=None, description="Validation metric that picked it (None: the last epoch).")
    run_dir: str = Field(description="Directory of the files that belong to this run alone.")

    @classmethod
    def of_run(cls, run: TrainingRun, run_dir: str) -> RunDetail:
        """From a run row and its directory."""
        return cls.of(
            run, description=run.description, deleted_at=run.deleted_at,
            stages=[StageView.of(s) for s in run.stages], error_stage=run.error_stage,
            error_message=run.error_message, trainer_strategy=run.trainer_strategy,
            trainer_replicas=run.trainer_replicas, gpus_visible=list(run.gpus_visible or []),
            attempts=[AttemptView.of(a) for a in run.trainer_attempts],
            metrics=dict(run.metrics or {}), epochs=[EpochView.of(e) for e in run.epochs],
            blessed=run.blessed, forced_reason=run.forced_reason,
            registered_version=run.registered_version, deployed=run.deployed,
            estimated_cost=run.estimated_cost, cost=run.cost,
            duration_seconds=run.duration_seconds,
            statistics_report=(run.artifacts or {}).get("statistics_report"),
            data_findings=list((run.artifacts or {}).get("data_findings") or []),
            drift_baseline=(run.artifacts or {}).get("drift_baseline"), run_dir=run_dir,
            best_epoch=(run.artifacts or {}).get("best_epoch"),
            best_epoch_metric=(run.artifacts or {}).get("best_epoch_metric"),
        )


class RunConfig(BaseModel):
    """The config later runs of a run start from, as stored."""

    run: RunRef = Field(description="The run.")
    config: dict[str, Any] = Field(description="The stored snapshot (as edited, if it was).")
    edited: bool = Field(description="Whether it was edited after the run ran.")
    edited_at: dt.datetime | None = Field(default=None, description="When it was edited.")


class ScheduledRun(RunRef):
    """A run a schedule started, as `retrain schedules show` lists it."""

    error_stage: Stage | None = Field(default=None, description="Stage that failed.")
    error_message: str | None = Field(default=None, description="Why.")
    lateness_seconds: float | None = Field(
        default=None, description="How late after its slot it started.")
    started_at: dt.datetime | None = Field(default=None, description="When it started (UTC).")
    stages: list[StageView] = Field(description="Its stages in pipeline order.")

    @classmethod
    def of_run(cls, run: TrainingRun) -> ScheduledRun:
        """From a run row."""
        return cls.of(run, error_stage=run.error_stage, error_message=run.error_message,
                      lateness_seconds=run.lateness_seconds, started_at=aware(run.started_at),
                      stages=[StageView.of(stage) for stage in run.stages])


class DeleteReport(BaseModel):
    """What deleting a run removed, and what it kept because other runs use it."""

    run: RunRef = Field(description="The deleted run.")
    removed: list[str] = Field(description="Directories and registry versions removed.")
    kept_shared: list[str] = Field(description="Stage outputs kept: other runs use them.")


class BestRun(BaseModel):
    """One entry of the best-runs table."""

    run: RunRef = Field(description="The run.")
    model_type: ModelType | None = Field(description="Registered model's type.")
    metric: str = Field(description="Key metric.")
    value: float = Field(description="Its value.")
    higher_is_better: bool = Field(description="Direction the table is sorted in.")


class ModelVersion(BaseModel):
    """A registered version and the run that pushed it."""

    version: str = Field(description="MLflow registered version.")
    run: RunRef | None = Field(description="Run that registered it, if recorded here.")
    champion: bool = Field(description="Carries the champion alias (serving).")


class ModelOverview(BaseModel):
    """A registered model as `retrain models list` shows it."""

    name: str = Field(description="Model name.")
    model_type: ModelType | None = Field(description="Model type.")
    runs: int = Field(description="Runs recorded (deleted ones included in numbering).")
    latest_version: str | None = Field(description="Newest registered version.")
    champion_version: str | None = Field(description="Serving version.")
    deployed: bool = Field(description="Whether a version serves.")
    deployed_version: str | None = Field(default=None, description="The version serving.")
    deployed_at: dt.datetime | None = Field(default=None, description="Serving since.")
    versions: list[ModelVersion] = Field(description="Registered versions, oldest first.")
    schedule: ScheduleStatus | None = Field(description="Its schedule's status, if it has one.")
    template: RunRef | None = Field(description="Run later runs start from.")
    history: list[ServingChangeView] = Field(
        default_factory=list, description="Serving changes, oldest first (`models show`).")


class ServingChangeView(BaseModel):
    """One push, deploy, undeploy or rollback of a registered model."""

    model_name: str = Field(description="Registered model.")
    sequence: int = Field(description="1, 2, … in the order the changes happened.")
    action: ModelAction = Field(description="What was done.")
    version: str | None = Field(description="Registered version serving after it (None: none).")
    previous_version: str | None = Field(description="The champion (or, for an undeploy, the "
                                                     "version serving) before it.")
    serving_version: str | None = Field(description="The version directory TF Serving loads.")
    serving_uri: str | None = Field(description="That directory.")
    config_uri: str | None = Field(default=None, description="The models.config written.")
    actor: str = Field(description="Who asked: a user, a flow run, the training pipeline.")
    reason: str | None = Field(description="Why, as given.")
    run: RunRef | None = Field(description="The training run whose model it serves, if any.")
    flow_run_id: str | None = Field(description="The operation's own flow run, if any.")
    at: dt.datetime = Field(description="When (UTC).")

    @classmethod
    def of(cls, change: ServingChange, run: TrainingRun | None = None,
           config_uri: str | None = None) -> ServingChangeView:
        """From a change row (and the run its version came from)."""
        return cls(model_name=change.registered_model.name, sequence=change.sequence,
                   action=ModelAction(change.action), version=change.version,
                   previous_version=change.previous_version,
                   serving_version=change.serving_version, serving_uri=change.serving_uri,
                   config_uri=config_uri, actor=change.actor, reason=change.reason,
                   run=RunRef.of(run) if run is not None else None,
                   flow_run_id=change.flow_run_id, at=aware(change.created))

    @property
    def summary(self) -> str:
        """One line: what serves now and what it replaced."""
        now = f"v{self.version} serves" if self.version else "nothing serves"
        was = f" (was v{self.previous_version})" if self.previous_version else ""
        return f"{self.model_name}: {self.action.value}, {now}{was}"


class NameCheck(BaseModel):
    """Whether a registered model name is free (`retrain models check-name`)."""

    name: str = Field(description="The name asked about (valid).")
    taken: bool = Field(description="A registered model has it.")
    runs: int = Field(default=0, description="Runs of that model, if taken.")
    schedule: ScheduleStatus | None = Field(
        default=None, description="Its schedule's status, if taken and scheduled.")


class RunIdentity(BaseModel):
    """Who a run is: what events about it and notifications name."""

    id: str = Field(description="Run id.")
    name: str = Field(description="Run name.")
    run_number: int = Field(description="Per registered model.")
    model_name: str = Field(description="Registered model.")
    flow_run_id: str | None = Field(default=None, description="Its Prefect flow run.")
    schedule_id: str | None = Field(default=None, description="Its schedule, if scheduled.")
    lateness_seconds: float | None = Field(
        default=None, description="How late after its slot a scheduled run started.")

    @classmethod
    def of(cls, run: TrainingRun) -> RunIdentity:
        """From a run row."""
        return cls(id=run.id, name=run.name, run_number=run.run_number,
                   model_name=run.registered_model.name, flow_run_id=run.flow_run_id,
                   schedule_id=run.schedule_id, lateness_seconds=run.lateness_seconds)


class RunOutcome(BaseModel):
    """How a flow run that returned ended: pushed, not blessed, or skipped as late."""

    status: RunStatus = Field(description="completed, not_blessed or skipped.")
    message: str | None = Field(default=None, description="The final state's message.")
    metrics: dict[str, Any] | None = Field(default=None, description="Final metrics.")
    blessed: bool | None = Field(default=None, description="The Evaluator's verdict.")
    blessing: dict[str, Any] | None = Field(default=None, description="The blessing record.")
    forced_reason: str | None = Field(default=None, description="Why it was force-blessed.")
    registered_version: str | None = Field(default=None, description="MLflow version pushed.")
    mlflow_run_id: str | None = Field(default=None, description="MLflow run of the push.")
    artifacts: dict[str, Any] | None = Field(default=None, description="Serving URI, reports.")


class DataDistances(BaseModel):
    """Per-feature distances of one run's train data from another's."""

    run: RunRef = Field(description="The run whose data is measured.")
    against: RunRef = Field(description="The run it is measured against.")
    distances: list[FeatureDistance] = Field(description="Features both runs have, by name.")
    only_in_run: list[str] = Field(description="Features the other run does not have.")
    only_in_against: list[str] = Field(description="Features this run does not have.")


class MetricDelta(BaseModel):
    """One metric of two runs."""

    name: str = Field(description="Metric name.")
    a: float | None = Field(description="Run A's value (None: A has no such metric).")
    b: float | None = Field(description="Run B's value.")

    @property
    def delta(self) -> float | None:
        """B minus A, when both have it."""
        return None if self.a is None or self.b is None else self.b - self.a


class ConfigChange(BaseModel):
    """A config field whose value differs between two runs."""

    path: str = Field(description="Dotted field path, e.g. training.epochs.")
    a: Any = Field(description="Run A's value (None: unset).")
    b: Any = Field(description="Run B's value.")


class RunComparison(BaseModel):
    """Two runs side by side."""

    a: RunRef = Field(description="Run A.")
    b: RunRef = Field(description="Run B.")
    config_changes: list[ConfigChange] = Field(description="Fields that differ, by path.")
    metrics: list[MetricDelta] = Field(description="Final metrics of either run, by name.")
    rules_a: list[dict[str, Any]] = Field(description="A's blessing rules as recorded.")
    rules_b: list[dict[str, Any]] = Field(description="B's blessing rules as recorded.")
    blessed: tuple[bool | None, bool | None] = Field(description="Each run's verdict.")
    data: DataDistances | None = Field(description="B's train data against A's.")
    data_note: str | None = Field(default=None, description="Why there are no distances.")
