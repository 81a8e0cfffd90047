"""Run configs for the bundled examples, shared by the main job, tests and benchmarks.

- `taxi_config`: TFX's own Chicago-taxi native-Keras example, run unmodified from the files
  shipped inside the installed tfx wheel, with the eval config of TFX's
  `taxi_pipeline_native_keras.py`.
- `rating_config`: the synthetic B2B interactions with the plain TFX user module in
  `synthetic/modules/rating_model.py`.
- `recommender_config`: the same interactions with a TFRS retrieval, ranking or multitask
  model built from typed config (no user module).
"""

from __future__ import annotations

import copy
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from retrain.domain.config import PipelineConfig, deep_merge

RATING_MODULE = Path(__file__).resolve().parents[2] / "synthetic" / "modules" / "rating_model.py"


def taxi_example_dir() -> Path:
    """tfx/examples/chicago_taxi_pipeline inside the installed tfx package (no TF import)."""
    spec = find_spec("tfx")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("tfx is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "examples" / "chicago_taxi_pipeline"


def taxi_config(**overrides: Any) -> PipelineConfig:
    """The taxi example as TFX's taxi_pipeline_native_keras.py configures it."""
    example = taxi_example_dir()
    values: dict[str, Any] = {
        "model_name": "chicago-taxi",
        # CsvExampleGen's default split: 2 hash buckets train, 1 eval.
        "input": {
            "uri": str(example / "data" / "simple"),
            "format": "csv",
            "pattern": "*.csv",
            "split": {"train_buckets": 2, "eval_buckets": 1},
        },
        "label_column": "tips",
        "schema": {"infer_feature_shape": True},
        # The taxi pipeline records anomalies without stopping on them.
        "validator": {"fail_on_anomalies": False},
        "transform": {"module_file": str(example / "taxi_utils_native_keras.py")},
        "trainer": {"train_steps": 1000, "eval_steps": 150},
        "evaluator": {
            "label_key": "tips_xf",
            "signature_name": "serving_default",
            "preprocessing_function_names": ["transform_features"],
            "metrics": [
                {"class_name": "BinaryAccuracy", "lower_bound": 0.6, "max_regression": 0.0}
            ],
        },
    }
    deep_merge(values, overrides)
    return PipelineConfig.model_validate(values)


def rating_config(data_dir: str | Path, **overrides: Any) -> PipelineConfig:
    """A rating model on synthetic interactions: blessed when MAE ≤ 1.0 and ≤ champion + 0.05."""
    values: dict[str, Any] = {
        "model_name": "demo-ratings",
        "input": {"uri": str(data_dir), "format": "csv", "pattern": "*.csv"},
        "label_column": "rating",
        "transform": {"module_file": str(RATING_MODULE)},
        "trainer": {"train_steps": 500, "eval_steps": 50},
        "evaluator": {
            "label_key": "rating_xf",
            "preprocessing_function_names": ["transform_features"],
            "metrics": [
                {"class_name": "ExampleCount"},
                {"class_name": "MeanAbsoluteError", "upper_bound": 1.0,
                 "higher_is_better": False, "max_regression": 0.05},
            ],
        },
    }
    deep_merge(values, overrides)
    return PipelineConfig.model_validate(values)


RECOMMENDER_FEATURES: dict[str, Any] = {
    "query": [
        {"kind": "categorical", "name": "buyer_id", "embedding_dim": 32},
        {"kind": "categorical", "name": "city", "embedding_dim": 8},
        {"kind": "timestamp", "name": "timestamp", "cyclical": ["hour", "weekday"]},
    ],
    "candidate": [
        {"kind": "categorical", "name": "product_id", "embedding_dim": 32},
        {"kind": "categorical", "name": "category", "embedding_dim": 8},
    ],
    "candidate_id": "product_id",
    "target": {"column": "rating"},
}

# The posterior fit on the synthetic interactions (merge over `recommender_config`'s
# retrieval values): queries are buyers (a per-row timestamp would make every row its own
# query), and each row's capped rating and its quantity are read beside the choice.
POSTERIOR_RETRIEVAL: dict[str, Any] = {
    "features": {
        "query": RECOMMENDER_FEATURES["query"][:2],
        "feedback": [{"column": "rating", "kind": "rating", "low": 1.0, "high": 5.0},
                     {"column": "quantity", "kind": "count", "low": 1.0}],
    },
    "model": {"fit": "posterior"},
}

# Blessing rules per model type: an absolute floor/ceiling and "not worse than the champion".
RECOMMENDER_METRICS: dict[str, list[dict[str, Any]]] = {
    "retrieval": [
        {"class_name": "recall_at_100", "lower_bound": 0.2, "relative_tolerance": 0.02},
    ],
    "ranking": [
        {"class_name": "rmse", "upper_bound": 1.2, "max_regression": 0.05},
    ],
    "multitask": [
        {"class_name": "recall_at_100", "lower_bound": 0.2, "relative_tolerance": 0.02},
        {"class_name": "rmse", "upper_bound": 1.2, "max_regression": 0.05},
    ],
}


def recommender_config(
    data_dir: str | Path, model_type: str = "retrieval", **overrides: Any
) -> PipelineConfig:
    """A TFRS model on the synthetic interactions, built from typed config."""
    values: dict[str, Any] = {
        "model_name": f"buyer-product-{model_type}",
        "input": {"uri": str(data_dir), "format": "csv", "pattern": "*.csv",
                  "split": {"partition_feature": None}},
        "label_column": "rating",
        # A copy: the merge below works in place and must not change the constant.
        "features": copy.deepcopy(RECOMMENDER_FEATURES),
        "model": {"type": model_type, "output_dim": 32,
                  "logq_correction": model_type != "ranking"},
        "training": {"epochs": 3, "batch_size": 256, "learning_rate": 0.1},
        "evaluator": {"metrics": RECOMMENDER_METRICS[model_type]},
    }
    deep_merge(values, overrides)
    return PipelineConfig.model_validate(values)
