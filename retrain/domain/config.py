"""Run configuration: one pydantic model per stage, validated before any stage runs.

`PipelineConfig` is the `training-pipeline` flow's only parameter, so the Prefect UI renders
it as a form and `prefect deployment run --param` / `--params` fill it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from retrain.domain.data_gates import DataGatesConfig
from retrain.domain.engine import BeamConfig, DataConfig
from retrain.domain.evaluation import (  # re-exported: the evaluator's section
    LOWER_IS_BETTER,
    EvaluatorConfig,
    ForceBless,
    MetricThreshold,
    TrivialBaseline,
)
from retrain.domain.features import FeatureConfig
from retrain.domain.overlap import OverlapPolicy
from retrain.domain.recommender import (
    GpuConfig,
    ModelConfig,
    ModelType,
    RecommenderSpec,
    TrainingParams,
)
from retrain.settings import get_settings

# Validation context key: the config comes from a run record, not from a user.
_STORED = "stored"
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_model_name(value: str) -> str:
    """A registered model name: 1-63 lowercase letters, digits, - or _ (ValueError if not)."""
    if not _NAME_RE.match(value):
        raise ValueError(
            f"model_name {value!r} must be 1-63 chars of lowercase letters, digits, - or _"
        )
    return value


def is_remote(uri: str) -> bool:
    """True for object-store URIs (gs://, s3://) that the local filesystem cannot see."""
    return "://" in uri and not uri.startswith("file://")


def absolute(uri: str | None) -> str | None:
    """Local paths made absolute (so runs from any directory share caches); URIs unchanged."""
    if not uri or is_remote(uri):
        return uri
    return str(Path(uri).expanduser().absolute())


class SplitConfig(_Config):
    """How ExampleGen divides rows into train and eval (seed 003's split strategies)."""

    strategy: Literal["hash", "time_holdout"] = Field(
        default="hash",
        description="`hash`: deterministic hash buckets per row; `time_holdout`: the last "
        "`holdout_days` days (by `timestamp_column`) go to eval, the rest to train.",
    )
    train_buckets: int = Field(
        default=8, ge=1, description="Hash buckets for the train split (hash strategy)."
    )
    eval_buckets: int = Field(
        default=2, ge=1, description="Hash buckets for the eval split (hash strategy)."
    )
    partition_feature: str | None = Field(
        default=None,
        description="Hash on this column instead of the whole row (keeps a buyer in one split).",
    )
    timestamp_column: str | None = Field(
        default=None,
        description="Integer unix-seconds column that orders rows in time (time_holdout).",
    )
    holdout_days: int | None = Field(
        default=None, ge=1, description="Days at the end of the data that form eval (time_holdout)."
    )

    @model_validator(mode="after")
    def _check_time_holdout(self) -> SplitConfig:
        if self.strategy == "time_holdout" and (
            self.timestamp_column is None or self.holdout_days is None
        ):
            raise ValueError(
                "split.strategy 'time_holdout' needs split.timestamp_column and split.holdout_days"
            )
        return self


class InputConfig(_Config):
    """Where ExampleGen reads raw data."""

    uri: str = Field(
        default="",
        description="Directory holding the data files, local path or gs:// (ignored for bigquery).",
    )
    format: Literal["csv", "parquet", "tfrecord", "bigquery"] = Field(
        default="csv",
        description="File format: csv (with header row), parquet, tfrecord (gzip or plain "
        "tf.Example), or bigquery (query below; needs GCP credentials and beam args with a "
        "temp_location).",
    )
    pattern: str = Field(
        default="*",
        description="Glob of the data files relative to `uri`, e.g. `*.csv` or `2026-*/part-*`.",
    )
    query: str | None = Field(default=None, description="BigQuery SQL (format=bigquery only).")
    split: SplitConfig = Field(default_factory=SplitConfig, description="Train/eval split.")

    def empty_message(self, files: int) -> str:
        """What ExampleGen (and the estimate before it) says when the files hold no rows."""
        return f"input data is empty: {files} {self.format} file(s) with no rows"

    _absolute_uri = field_validator("uri")(absolute)

    @model_validator(mode="after")
    def _check_source(self) -> InputConfig:
        if self.format == "bigquery":
            if not self.query:
                raise ValueError("input.query is required when input.format is 'bigquery'")
        elif not self.uri:
            raise ValueError(f"input.uri is required for input.format '{self.format}'")
        return self


class SchemaConfig(_Config):
    """SchemaGen: infer a schema from statistics, or import a curated one."""

    schema_file: str | None = Field(
        default=None,
        description="Path of a curated schema.pbtxt to validate against instead of inferring.",
    )
    infer_feature_shape: bool = Field(
        default=True, description="Infer fixed feature shapes (dense tensors) when inferring."
    )

    _absolute_file = field_validator("schema_file")(absolute)


class ValidatorConfig(_Config):
    """ExampleValidator: schema anomalies, and the data gates between runs and splits."""

    fail_on_anomalies: bool = Field(
        default=True, description="Fail the run at ExampleValidator when any split has anomalies."
    )
    exclude_splits: list[str] = Field(default_factory=list, description="Splits not validated.")
    gates: DataGatesConfig = Field(
        default_factory=DataGatesConfig,
        description="Drift against the previous finished run, train/eval skew, empty and "
        "constant features: thresholds and what each does (fail, warn, off).",
    )


class TransformConfig(_Config):
    """Transform: the user module with `preprocessing_fn` (or the library one for `model`)."""

    module_file: str | None = Field(
        default=None,
        description="Python file defining `preprocessing_fn(inputs)`; leave empty for a "
        "recommender `model`, whose preprocessing_fn is built from `features`.",
    )
    custom_config: dict[str, str | int | float | bool | list | dict | None] = Field(
        default_factory=dict,
        description="Passed to `preprocessing_fn` as `custom_config` when it accepts one.",
    )

    analysis_rows: int | None = Field(
        default=1_000_000,
        ge=1_000,
        description="Streaming data path, library models: tf.Transform analyses (vocabularies, "
        "means) an evenly spread sample of at most this many train rows, and the Trainer "
        "applies the transform graph in its input pipeline instead of reading materialized "
        "transformed examples. Ids seen only outside the sample map to the OOV bucket. Empty: "
        "analyse every row (Beam then holds them all). User modules always get the whole "
        "split, materialized.",
    )

    _absolute_file = field_validator("module_file")(absolute)


class TrainerConfig(_Config):
    """Trainer: the user module with `run_fn(fn_args)` and its step budget."""

    module_file: str | None = Field(
        default=None,
        description="Python file defining `run_fn(fn_args)`; defaults to transform.module_file.",
    )
    train_steps: int = Field(default=1000, ge=1, description="TrainArgs.num_steps.")
    eval_steps: int = Field(default=150, ge=1, description="EvalArgs.num_steps.")
    seed: int | None = Field(
        default=None,
        ge=0,
        description="Seed TensorFlow (weights, shuffling, dropout) and enable op determinism "
        "before run_fn, so the same data and config train the same model; None leaves "
        "run_fn unseeded, as TFX does.",
    )
    custom_config: dict[str, str | int | float | bool | list | dict | None] = Field(
        default_factory=dict, description="Handed to run_fn as fn_args.custom_config."
    )

    _absolute_file = field_validator("module_file")(absolute)


# Metrics where smaller is better, when a threshold does not say.
class PusherConfig(_Config):
    """Pusher: where blessed models go."""

    serving_base: str = Field(
        default_factory=lambda: get_settings().resolved_serving_base(),
        description="Base directory for serving models (local or gs://); a blessed model is "
        "copied to <serving_base>/<model_name>/<version>.",
    )

    _absolute_base = field_validator("serving_base")(absolute)


class PipelineConfig(_Config):
    """One training run: data, stage settings and destinations."""

    model_name: str = Field(
        description="Registered model name (lowercase, digits, - and _); the baseline for "
        "blessing is the currently pushed model of this name."
    )
    pipeline_root: str = Field(
        default_factory=lambda: get_settings().resolved_pipeline_root(),
        description="Where stage artifacts live (local dir or gs://).",
    )
    input: InputConfig = Field(description="Raw data source and split.")
    label_column: str | None = Field(
        default=None, description="Raw label column; checked to exist before Transform runs."
    )
    schema_: SchemaConfig = Field(
        default_factory=SchemaConfig, alias="schema", description="Schema inference or import."
    )
    validator: ValidatorConfig = Field(
        default_factory=ValidatorConfig, description="Anomaly handling."
    )
    transform: TransformConfig = Field(
        default_factory=TransformConfig, description="preprocessing_fn module."
    )
    trainer: TrainerConfig = Field(default_factory=TrainerConfig, description="run_fn module.")
    features: FeatureConfig | None = Field(
        default=None, description="Recommender features (with `model`)."
    )
    model: ModelConfig | None = Field(
        default=None,
        description="A TFRS recommender built from config; leave empty to run the user "
        "modules in transform/trainer instead.",
    )
    training: TrainingParams = Field(
        default_factory=TrainingParams,
        description="Epochs, batch size, learning rate, early stopping (recommender `model`).",
    )
    gpu: GpuConfig = Field(default_factory=GpuConfig, description="GPUs for the Trainer.")
    evaluator: EvaluatorConfig = Field(
        default_factory=EvaluatorConfig, description="Blessing rules."
    )
    pusher: PusherConfig = Field(default_factory=PusherConfig, description="Push destination.")
    beam: BeamConfig = Field(default_factory=BeamConfig, description="Beam pipeline args.")
    data: DataConfig = Field(
        default_factory=DataConfig, description="Streaming or Beam data stages, workers."
    )
    overlap: OverlapPolicy = Field(
        default=OverlapPolicy.ALLOW,
        description="While another run of this model is active: allow (run side by side), "
        "queue (wait for it), skip (record skipped) or cancel (record cancelled).",
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    _absolute_root = field_validator("pipeline_root")(absolute)

    _check_name = field_validator("model_name")(check_model_name)

    @model_validator(mode="after")
    def _check_model(self) -> PipelineConfig:
        if self.model is None:
            if self.features is not None:
                raise ValueError("features: given without a model; set model.type too")
            if not self.transform.module_file:
                raise ValueError(
                    "transform.module_file is required unless a recommender `model` is set"
                )
            if not self.evaluator.label_key:
                raise ValueError("evaluator.label_key is required for a user module")
            return self
        if self.features is None:
            raise ValueError(f"features: required for a {self.model.type} model")
        if self.model.has_ranking and self.features.target is None:
            raise ValueError(
                f"features.target: required for a {self.model.type} model (the column it ranks by)"
            )
        if self.transform.module_file or self.trainer.module_file:
            raise ValueError(
                "transform.module_file / trainer.module_file: leave empty with `model`; "
                "the library preprocessing_fn and run_fn are built from the config"
            )
        known = self.model.metric_names()
        for index, metric in enumerate(self.evaluator.metrics):
            if metric.class_name not in known:
                raise ValueError(
                    f"evaluator.metrics[{index}].class_name: {metric.class_name!r} is not a "
                    f"{self.model.type} metric (one of {known})"
                )
        return self

    @model_validator(mode="after")
    def _check_local_files(self, info: ValidationInfo) -> PipelineConfig:
        if (info.context or {}).get(_STORED):
            return self  # a stored run's files may be gone since; its record still reads
        files = {
            "transform.module_file": self.transform.module_file,
            "trainer.module_file": self.trainer.module_file,
            "schema.schema_file": self.schema_.schema_file,
        }
        for field, path in files.items():
            if path and not is_remote(path) and not Path(path).is_file():
                raise ValueError(f"{field}: file {path!r} does not exist")
        return self

    @property
    def recommender(self) -> RecommenderSpec | None:
        """The library run_fn's inputs, or None when user modules train the model."""
        if self.model is None or self.features is None:
            return None
        return RecommenderSpec(
            features=self.features, model=self.model, training=self.training, gpu=self.gpu
        )

    @classmethod
    def from_snapshot(cls, snapshot: dict[str, Any]) -> PipelineConfig:
        """A config as a run record stored it (`snapshot()`), read back whole; the local
        files it names are not required to exist any more."""
        return cls.model_validate(snapshot, context={_STORED: True})

    def snapshot(self) -> dict[str, Any]:
        """The JSON form a run record stores (aliases, as the Prefect form submits it)."""
        return self.model_dump(mode="json", by_alias=True)

    @property
    def model_type(self) -> ModelType:
        """The registered model's type: the recommender's, or `user_module`."""
        return ModelType(self.model.type) if self.model else ModelType.USER_MODULE

    @property
    def streaming(self) -> bool:
        """True when the data stages stream (see DataConfig.engine)."""
        return self.data.streaming(self.beam.args)

    @property
    def trainer_module_file(self) -> str | None:
        """The module holding run_fn (the transform module unless set)."""
        return self.trainer.module_file or self.transform.module_file

    def storage_locations(self) -> dict[str, str]:
        """The places this run reads and writes, by config field: the input data (not for
        BigQuery), the pipeline root and the serving base."""
        locations = {"pipeline_root": self.pipeline_root,
                     "pusher.serving_base": self.pusher.serving_base}
        if self.input.format != "bigquery":
            locations = {"input.uri": self.input.uri, **locations}
        return locations


def deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> None:
    """Merge `overrides` into `base` in place: nested dicts merge key by key, anything else
    (lists included) replaces."""
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = value


def with_overrides(config: PipelineConfig, overrides: dict[str, Any] | None) -> PipelineConfig:
    """`config` with a partial config merged over it (e.g. {"training": {"epochs": 8}}),
    validated again as a whole; no overrides gives `config` itself."""
    if not overrides:
        return config
    values = config.snapshot()
    deep_merge(values, overrides)
    return PipelineConfig.model_validate(values)
