"""Small typed references that tasks pass to each other instead of data.

An `ArtifactRef` names one TFX artifact (type, URI, properties); the data stays under the
pipeline root. Each stage returns a `StageOutput` whose `fingerprint` is the stage's cache
key, so a downstream stage's key changes exactly when something upstream changed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from retrain.domain.data_gates import Comparison, DataFinding, FeatureDistance
from retrain.domain.recommender import FitMethod
from retrain.domain.stages import Stage
from retrain.domain.status import AttemptOutcome


class ArtifactRef(BaseModel):
    """A TFX artifact by reference: enough to rebuild the `types.Artifact` in another process."""

    model_config = ConfigDict(frozen=True)

    type_name: str = Field(description="TFX standard artifact type, e.g. Examples, Model.")
    uri: str = Field(description="Artifact directory (local path or gs://).")
    split_names: list[str] = Field(default_factory=list, description="Splits, if any.")
    mlmd: dict[str, Any] = Field(
        default_factory=dict,
        description="The artifact's MLMD proto as JSON (properties and custom properties).",
    )

    def split_uri(self, split: str) -> str:
        """Directory of one split, as TFX lays it out."""
        return f"{self.uri.rstrip('/')}/Split-{split}"

    def to_tfx(self) -> Any:
        """Rebuild the TFX artifact (imports TFX; call inside task bodies only)."""
        from google.protobuf import json_format
        from tfx.types import standard_artifacts

        artifact = getattr(standard_artifacts, self.type_name)()
        if self.mlmd:
            json_format.ParseDict(self.mlmd, artifact.mlmd_artifact, ignore_unknown_fields=True)
        artifact.uri = self.uri
        return artifact

    @classmethod
    def from_tfx(cls, artifact: Any) -> ArtifactRef:
        """Capture a TFX artifact after its executor has run."""
        from google.protobuf import json_format

        mlmd = json_format.MessageToDict(artifact.mlmd_artifact)
        for volatile in ("id", "typeId", "state", "createTimeSinceEpoch",
                         "lastUpdateTimeSinceEpoch"):
            mlmd.pop(volatile, None)
        splits: list[str] = []
        if "split_names" in (artifact.PROPERTIES or {}):
            import json

            splits = json.loads(artifact.split_names or "[]")
        return cls(type_name=artifact.type_name, uri=artifact.uri, split_names=splits, mlmd=mlmd)


class StageOutput(BaseModel):
    """What a stage hands downstream: its artifacts by output key, and its cache key."""

    model_config = ConfigDict(frozen=True)

    stage: Stage = Field(description="TFX stage name, e.g. ExampleGen.")
    fingerprint: str = Field(description="Hash of every input of the stage; its cache key.")
    artifacts: dict[str, ArtifactRef] = Field(description="Output artifacts by TFX output key.")

    def __getitem__(self, key: str) -> ArtifactRef:
        return self.artifacts[key]


class EpochMetrics(BaseModel):
    """Metrics of one finished training epoch."""

    epoch: int = Field(ge=1, description="1-based epoch number.")
    total_epochs: int = Field(ge=1, description="Epochs configured.")
    seconds: float = Field(ge=0, description="Wall time of the epoch, validation included.")
    metrics: dict[str, float] = Field(description="Keras logs: loss, val_loss, val_recall_at_K …")


class TrainerAttempt(BaseModel):
    """One submission of the Trainer to its deployment (a GPU option, a pod) and its end."""

    number: int = Field(ge=1, description="1-based attempt number within the stage.")
    gpu_type: str | None = Field(default=None, description="Accelerator type asked for.")
    gpu_count: int = Field(default=0, ge=0, description="GPUs asked for (0: CPU pod).")
    flow_run_id: str | None = Field(default=None, description="The gpu-trainer flow run.")
    outcome: AttemptOutcome = Field(
        default=AttemptOutcome.RUNNING, description="How the attempt ended (running: not yet)."
    )
    reason: str | None = Field(default=None, description="Why it ended that way.")
    resumed_from_epoch: int = Field(
        default=0, ge=0, description="Epochs restored from a checkpoint when it started."
    )
    started_at: datetime | None = Field(default=None, description="Submitted at (UTC).")
    finished_at: datetime | None = Field(default=None, description="Ended at (UTC).")


class TrainerOutput(StageOutput):
    """Trainer's output plus how it trained (recommender models; empty for user modules)."""

    epochs: list[EpochMetrics] = Field(default_factory=list, description="Per-epoch metrics.")
    strategy: str | None = Field(default=None, description="tf.distribute strategy used.")
    replicas: int | None = Field(default=None, description="Replicas in sync.")
    gpus_visible: list[str] = Field(default_factory=list, description="GPUs TensorFlow saw.")
    epochs_run: int | None = Field(default=None, description="Epochs the model has trained.")
    fit: FitMethod | None = Field(
        default=None, description="How the weights were found: sgd (the records are epochs) "
        "or posterior (they are blocks of Langevin steps).")
    best_epoch: int | None = Field(
        default=None, description="The epoch whose weights were exported (training."
        "keep_best_epoch: the best by best_epoch_metric; else the last).")
    best_epoch_metric: str | None = Field(
        default=None, description="Validation metric that picked it (None: the last epoch).")
    best_epoch_value: float | None = Field(
        default=None, description="Its value at the epoch kept.")
    resumed_from_epoch: int | None = Field(
        default=None, description="Epochs restored from a checkpoint (a resumed Trainer)."
    )
    optimizer_steps: int | None = Field(
        default=None, description="Optimizer steps of the final model, resumed ones included."
    )
    attempts: list[TrainerAttempt] = Field(
        default_factory=list, description="Submissions to the trainer deployment, if any."
    )


class SplitStats(BaseModel):
    """Row and feature counts of one split, read from TFDV statistics."""

    rows: int = Field(description="Examples in the split.")
    features: int = Field(description="Features in the split.")
    missing_pct: dict[str, float] = Field(
        default_factory=dict, description="Percent of rows missing each feature that has gaps."
    )


class StatisticsOutput(StageOutput):
    """StatisticsGen's output plus a summary small enough to show without TFDV."""

    splits: dict[str, SplitStats] = Field(description="Per-split counts.")
    feature_names: list[str] = Field(description="Features seen in the data.")
    html_report: str = Field(description="Path of the full TFDV HTML report.")


class StatisticsBaseline(BaseModel):
    """The statistics of an earlier run that this run's data is compared with (drift)."""

    model_config = ConfigDict(frozen=True)

    run_id: str = Field(description="The earlier run's record id.")
    label: str = Field(description="`name #N` of the earlier run.")
    statistics_uri: str = Field(description="Its ExampleStatistics artifact directory.")


class ValidationOutput(StageOutput):
    """ExampleValidator's output: schema anomalies per split, and the data gates' findings."""

    anomalies: dict[str, list[str]] = Field(
        default_factory=dict, description="Per split: 'feature: short description' lines."
    )
    findings: list[DataFinding] = Field(
        default_factory=list, description="Features that crossed a data gate (warn ones, when "
        "the run went on)."
    )
    distances: dict[Comparison, list[FeatureDistance]] = Field(
        default_factory=dict, description="Every measured distance, by gate (drift, skew)."
    )
    drift_baseline: str | None = Field(
        default=None, description="The run whose data drift was measured against, if any."
    )
    notes: list[str] = Field(
        default_factory=list, description="What was not checked and why (a first run has no "
        "drift baseline)."
    )


class BaselineRef(ArtifactRef):
    """The champion model a candidate is compared with, and its registered version."""

    version: str | None = Field(default=None, description="MLflow registered-model version.")
    model_type: str | None = Field(
        default=None, description="The type of the model it is (retrieval, ranking, multitask, "
        "user_module), from the run that registered it; None if unknown.")


class RuleResult(BaseModel):
    """One blessing rule applied to one metric, passed or not."""

    model_config = ConfigDict(frozen=True)

    metric: str = Field(description="Metric name, or '*' for rules about the whole model.")
    rule: Literal[
        "lower_bound", "upper_bound", "max_regression", "relative_tolerance",
        "missing_metric", "first_run", "force_bless", "trivial_baseline", "model_type",
    ] = Field(description="Which rule.")
    passed: bool = Field(description="Whether the rule held.")
    value: float | None = Field(default=None, description="The candidate's value.")
    threshold: float | None = Field(
        default=None, description="The bound the value was held to (after the baseline, for "
        "change rules)."
    )
    baseline_value: float | None = Field(default=None, description="The baseline's value.")
    trivial_value: float | None = Field(
        default=None, description="The trivial predictor's value on the same eval rows "
        "(trivial_baseline rule)."
    )
    message: str = Field(description="One line a person can read.")


class Blessing(BaseModel):
    """The Evaluator's verdict with everything that went into it."""

    model_config = ConfigDict(frozen=True)

    blessed: bool = Field(description="Blessed (thresholds passed or forced).")
    rules: list[RuleResult] = Field(description="Every rule checked, in config order.")
    baseline_version: str | None = Field(default=None, description="Champion version compared with.")
    baseline_metrics: dict[str, float] | None = Field(
        default=None, description="The baseline's metrics on the same eval data."
    )
    forced_reason: str | None = Field(default=None, description="Force-bless reason, if forced.")

    @property
    def failed(self) -> list[RuleResult]:
        """Rules that did not hold (a forced blessing keeps them on record)."""
        return [rule for rule in self.rules if not rule.passed]


class FloorMetric(BaseModel):
    """What a model that learned nothing scores on a metric, on the same eval rows."""

    model_config = ConfigDict(frozen=True)

    metric: str = Field(description="Metric name, as the Evaluator keys it (recall_at_10, rmse).")
    value: float = Field(description="The trivial predictor's value.")
    predictor: str = Field(description="The trivial predictor, e.g. most-popular-items predictor "
                           "(learned from the train split).")


class EvaluationOutput(StageOutput):
    """Evaluator's output: the blessing, the metrics and what it was compared against."""

    blessed: bool = Field(description="Whether every threshold passed (or it was forced).")
    metrics: dict[str, float] = Field(description="Overall-slice metrics of the candidate.")
    baseline_model_uri: str | None = Field(description="The baseline's model URI, if any.")
    failed_checks: list[str] = Field(
        default_factory=list, description="Thresholds that failed, one line each."
    )
    blessing: Blessing | None = Field(
        default=None, description="Rule-by-rule record (recommender evaluator; force-bless)."
    )
    floors: list[FloorMetric] = Field(
        default_factory=list, description="The trivial predictors' values on the same eval "
        "rows (most-popular items for recall@K, the train mean for rmse/mae …), where the "
        "trivial baseline was computed.")


class PushOutput(StageOutput):
    """Pusher's outcome. Not pushed is a normal outcome that carries its reason."""

    pushed: bool = Field(description="Whether a model was pushed.")
    reason: str = Field(description="Why it was or was not pushed.")
    serving_uri: str | None = Field(default=None, description="Pushed model directory.")
    version: str | None = Field(default=None, description="Serving version (unix seconds).")
    mlflow_run_id: str | None = Field(default=None, description="MLflow run that logged it.")
    registered_version: str | None = Field(
        default=None, description="MLflow registered-model version created for it."
    )
    model_card_uri: str | None = Field(
        default=None, description="Its model card, beside the pushed model.")
    stac_item_uri: str | None = Field(
        default=None, description="Its STAC Item (MLM extension), beside the pushed model.")
    publication_error: str | None = Field(
        default=None, description="Why the card and item were not written, if they were not "
                                  "(the push itself stands).")


def output_type(stage: Stage) -> type[StageOutput]:
    """The StageOutput class `stage` returns (and writes into its completion marker)."""
    return {
        Stage.STATISTICS_GEN: StatisticsOutput,
        Stage.EXAMPLE_VALIDATOR: ValidationOutput,
        Stage.TRAINER: TrainerOutput,
        Stage.EVALUATOR: EvaluationOutput,
        Stage.PUSHER: PushOutput,
    }.get(stage, StageOutput)
