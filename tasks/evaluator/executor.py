"""The recommender Evaluator: recall@K over the full candidate corpus, RMSE/MAE, the blessing.

TFMA cannot express recall@K against a whole candidate corpus, so recommender models built
from config are evaluated by this TFX executor instead. Like TFX's Evaluator it reads the raw
eval split, scores the candidate and (when there is one) the baseline on the same rows,
writes a ModelEvaluation (`metrics.json`) and a ModelBlessing (`BLESSED` / `NOT_BLESSED`
file and the `blessed` custom property that TFX's Pusher checks).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import numpy as np
from pydantic import BaseModel, Field
from tfx.dsl.components.base import base_executor
from tfx.dsl.io import fileio
from tfx.utils import path_utils

from tasks.evaluator.blessing import decide_blessing
from tasks.evaluator.metrics import RecallAccumulator, RegressionAccumulator
from retrain.domain.config import EvaluatorConfig
from retrain.domain.recommender import RECALL_KS, ModelConfig

logger = logging.getLogger("retrain.evaluator")
METRICS_FILE = "metrics.json"


class RecommenderEvalSpec(BaseModel):
    """The evaluator's exec property: what to compute and the blessing rules."""

    model: ModelConfig = Field(description="Model type decides the metrics.")
    evaluator: EvaluatorConfig = Field(description="Thresholds, force-bless, batch size.")
    baseline_version: str | None = Field(default=None, description="Champion's version.")


def split_files(examples_uri: str, splits: list[str]) -> list[str]:
    """The TFRecord files of the given splits of an Examples artifact."""
    files: list[str] = []
    for split in splits:
        found = fileio.glob(f"{examples_uri.rstrip('/')}/Split-{split}/*")
        if not found:
            raise ValueError(f"no examples in split {split!r} of {examples_uri}")
        files.extend(sorted(found))
    return files


def evaluate_saved_model(model_dir: str, files: list[str], model: ModelConfig,
                         batch_size: int) -> dict[str, float]:
    """Score one exported recommender on raw examples: recall@K, rmse, mae, example_count."""
    import tensorflow as tf

    loaded = tf.saved_model.load(model_dir)
    if "evaluate_examples" not in loaded.signatures:
        raise ValueError(
            f"{model_dir} has no evaluate_examples signature: it was not exported by "
            "retrain's recommender run_fn, so it cannot be evaluated as a "
            f"{model.type} model"
        )
    evaluate = loaded.signatures["evaluate_examples"]
    recall = regression = lookup = None
    if model.has_retrieval:
        if "candidate_corpus" not in loaded.signatures:
            raise ValueError(f"{model_dir} has no candidate corpus: not a retrieval model")
        corpus = loaded.signatures["candidate_corpus"]()
        ids = corpus["candidate_ids"].numpy()
        lookup = {candidate: index for index, candidate in enumerate(ids)}
        recall = RecallAccumulator(corpus["embeddings"].numpy(), RECALL_KS)
    if model.has_ranking:
        regression = RegressionAccumulator()
    compression = "GZIP" if files[0].endswith(".gz") else None
    dataset = tf.data.TFRecordDataset(files, compression_type=compression).batch(batch_size)
    rows = 0
    for serialized in dataset:
        out = evaluate(examples=serialized)
        rows += int(serialized.shape[0])
        if recall is not None:
            if "query_embedding" not in out:
                raise ValueError(f"{model_dir} gives no query embeddings: not a retrieval model")
            target = np.fromiter((lookup.get(c, -1) for c in out["candidate_id"].numpy()),
                                 dtype=np.int64)
            recall.add(out["query_embedding"].numpy(), target)
        if regression is not None:
            if "prediction" not in out:
                raise ValueError(f"{model_dir} gives no predictions: not a ranking model")
            present = out["has_target"].numpy()
            regression.add(out["prediction"].numpy()[present], out["target"].numpy()[present])
    if rows == 0:
        raise ValueError("the eval split is empty")
    metrics: dict[str, float] = {"example_count": float(rows)}
    if recall is not None:
        metrics.update({k: v for k, v in recall.result().items() if k != "example_count"})
    if regression is not None:
        metrics.update({k: v for k, v in regression.result().items() if k != "example_count"})
    return metrics


class Executor(base_executor.BaseExecutor):
    """TFX executor: evaluate candidate and baseline, decide and write the blessing."""

    def Do(self, input_dict: dict[str, list[Any]], output_dict: dict[str, list[Any]],
           exec_properties: dict[str, Any]) -> None:
        """Inputs: examples, model, optional baseline_model. Outputs: evaluation, blessing."""
        spec = RecommenderEvalSpec.model_validate_json(exec_properties["recommender"])
        files = split_files(input_dict["examples"][0].uri,
                            json.loads(exec_properties["example_splits"]))
        model = input_dict["model"][0]
        batch = spec.evaluator.batch_size
        metrics = evaluate_saved_model(path_utils.serving_model_path(model.uri), files,
                                       spec.model, batch)
        baseline = (input_dict.get("baseline_model") or [None])[0]
        baseline_metrics = None
        if baseline is not None:
            baseline_metrics = evaluate_saved_model(
                path_utils.serving_model_path(baseline.uri), files, spec.model, batch
            )
        blessing = decide_blessing(metrics, spec.evaluator.metrics, baseline_metrics,
                                   spec.baseline_version if baseline else None,
                                   spec.evaluator.force_bless)
        logger.info("metrics %s; blessed=%s", metrics, blessing.blessed)

        evaluation = output_dict["evaluation"][0]
        with fileio.open(os.path.join(evaluation.uri, METRICS_FILE), "w") as handle:
            handle.write(json.dumps({
                "metrics": metrics,
                "baseline_metrics": baseline_metrics,
                "blessing": blessing.model_dump(mode="json"),
            }, indent=2))
        artifact = output_dict["blessing"][0]
        artifact.set_string_custom_property("current_model", model.uri)
        if baseline is not None:
            artifact.set_string_custom_property("baseline_model", baseline.uri)
        if blessing.forced_reason:
            artifact.set_string_custom_property("forced_reason", blessing.forced_reason)
        marker = "BLESSED" if blessing.blessed else "NOT_BLESSED"
        with fileio.open(os.path.join(artifact.uri, marker), "w") as handle:
            handle.write("")
        artifact.set_int_custom_property("blessed", int(blessing.blessed))


def read_evaluation(evaluation_uri: str) -> dict[str, Any]:
    """What the executor wrote: metrics, baseline_metrics, blessing (as JSON)."""
    with fileio.open(os.path.join(evaluation_uri, METRICS_FILE), "r") as handle:
        return json.load(handle)
