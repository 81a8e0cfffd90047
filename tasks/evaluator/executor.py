"""The recommender Evaluator: recall@K over the full candidate corpus, RMSE/MAE, the blessing.

TFMA cannot express recall@K against a whole candidate corpus, so recommender models built
from config are evaluated by this TFX executor instead. Like TFX's Evaluator it reads the raw
eval split, scores the candidate and (when there is one) the baseline on the same rows,
writes a ModelEvaluation (`metrics.json`) and a ModelBlessing (`BLESSED` / `NOT_BLESSED`
file and the `blessed` custom property that TFX's Pusher checks).

The trivial predictors (`trivial.py`: the train mean target for rmse/mae, the items most
often the target on the train split for recall@K) learn from the train split of the same raw
Examples in one pass over two columns and are scored in the same loop over the eval rows.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, Field
from tfx.dsl.components.base import base_executor
from tfx.dsl.io import fileio
from tfx.utils import path_utils

from tasks.evaluator import trivial
from tasks.evaluator.blessing import decide_blessing
from tasks.evaluator.columns import column_batches, records, split_files
from tasks.evaluator.metrics import RecallAccumulator, RegressionAccumulator
from retrain.domain.config import EvaluatorConfig
from retrain.domain.recommender import RECALL_KS, ModelConfig

logger = logging.getLogger("retrain.evaluator")
METRICS_FILE = "metrics.json"
TRAIN_SPLIT = "train"


class RecommenderEvalSpec(BaseModel):
    """The evaluator's exec property: what to compute and the blessing rules."""

    model: ModelConfig = Field(description="Model type decides the metrics.")
    evaluator: EvaluatorConfig = Field(description="Thresholds, force-bless, batch size.")
    baseline_version: str | None = Field(default=None, description="Champion's version.")
    candidate_column: str | None = Field(
        default=None, description="Raw candidate-id column (most-popular items, retrieval)."
    )
    target_column: str | None = Field(
        default=None, description="Raw target column (train mean, ranking)."
    )

    def trivial_wanted(self) -> bool:
        """True when some thresholded metric gets a trivial_baseline rule."""
        return self.evaluator.trivial_baseline.enabled and any(
            trivial.predictor_for(metric.class_name) for metric in self.evaluator.metrics
        )


@dataclass(frozen=True)
class TrivialInputs:
    """What the trivial predictors learn from: the raw train split's files, the raw feature
    spec, and the candidate-id and target columns (either may be None)."""

    train_files: list[str]
    raw_spec: dict[str, Any]
    candidate_column: str | None = None
    target_column: str | None = None


def learn_trivial(inputs: TrivialInputs, lookup: dict[bytes, int] | None, want_mean: bool,
                  batch_size: int) -> tuple[np.ndarray | None, float | None]:
    """One pass over two columns of the train split: how often each corpus candidate is the
    target (given the corpus `lookup`, id → index) and the mean target (`want_mean`)."""
    id_column = inputs.candidate_column if lookup is not None else None
    target_column = inputs.target_column if want_mean else None
    columns = [name for name in (id_column, target_column) if name]
    if not columns:
        return None, None
    counts = np.zeros(len(lookup), dtype=np.int64) if id_column else None
    labels = trivial.LabelTally(max_classes=0)  # a target's mean, no classes
    for batch in column_batches(inputs.train_files,
                                {name: inputs.raw_spec[name] for name in columns},
                                batch_size, strings=(id_column,) if id_column else ()):
        if id_column:
            ids, present = batch[id_column]
            unique, inverse = np.unique(ids[present], return_inverse=True)
            index = np.fromiter((lookup.get(u, -1) for u in unique), dtype=np.int64,
                                count=len(unique))
            trivial.count_targets(counts, index[inverse])
        if target_column:
            values, present = batch[target_column]
            labels.add(values[present].astype(np.float64))
    return counts, labels.mean if target_column else None


def evaluate_saved_model(model_dir: str, files: list[str], model: ModelConfig,
                         batch_size: int, trivial_inputs: TrivialInputs | None = None,
                         ) -> tuple[dict[str, float], dict[str, float]]:
    """Score one exported recommender on raw examples: recall@K, rmse, mae, example_count.

    With `trivial_inputs`, the trivial predictors are scored on the same rows in the same
    loop; the second dict holds their values (empty without).
    """
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
    popular = constant = None
    if trivial_inputs is not None:
        counts, mean = learn_trivial(trivial_inputs, lookup, regression is not None,
                                     batch_size)
        popular = trivial.PopularityRecall(counts, RECALL_KS) if counts is not None else None
        constant = trivial.ConstantScores(None, mean) if mean is not None else None
    rows = 0
    for serialized in records(files, batch_size):
        out = evaluate(examples=serialized)
        rows += int(serialized.shape[0])
        if recall is not None:
            if "query_embedding" not in out:
                raise ValueError(f"{model_dir} gives no query embeddings: not a retrieval model")
            target = np.fromiter((lookup.get(c, -1) for c in out["candidate_id"].numpy()),
                                 dtype=np.int64)
            recall.add(out["query_embedding"].numpy(), target)
            if popular is not None:
                popular.add(target)
        if regression is not None:
            if "prediction" not in out:
                raise ValueError(f"{model_dir} gives no predictions: not a ranking model")
            present = out["has_target"].numpy()
            regression.add(out["prediction"].numpy()[present], out["target"].numpy()[present])
            if constant is not None:
                constant.add(out["target"].numpy()[present])
    if rows == 0:
        raise ValueError("the eval split is empty")
    metrics: dict[str, float] = {"example_count": float(rows)}
    if recall is not None:
        metrics.update({k: v for k, v in recall.result().items() if k != "example_count"})
    if regression is not None:
        metrics.update({k: v for k, v in regression.result().items() if k != "example_count"})
    trivial_metrics: dict[str, float] = {}
    for scorer in (popular, constant):
        if scorer is not None:
            trivial_metrics.update(scorer.result())
    return metrics, trivial.by_metric(trivial_metrics, list(metrics))


class Executor(base_executor.BaseExecutor):
    """TFX executor: evaluate candidate and baseline, decide and write the blessing."""

    def Do(self, input_dict: dict[str, list[Any]], output_dict: dict[str, list[Any]],
           exec_properties: dict[str, Any]) -> None:
        """Inputs: examples, model, transform_graph, optional baseline_model. Outputs:
        evaluation, blessing."""
        spec = RecommenderEvalSpec.model_validate_json(exec_properties["recommender"])
        examples_uri = input_dict["examples"][0].uri
        files = split_files(examples_uri, json.loads(exec_properties["example_splits"]))
        model = input_dict["model"][0]
        batch = spec.evaluator.batch_size
        trivial_inputs = None
        if spec.trivial_wanted():
            trivial_inputs = TrivialInputs(
                train_files=split_files(examples_uri, [TRAIN_SPLIT]),
                raw_spec=raw_feature_spec(input_dict["transform_graph"][0].uri),
                candidate_column=spec.candidate_column, target_column=spec.target_column,
            )
        metrics, trivial_metrics = evaluate_saved_model(
            path_utils.serving_model_path(model.uri), files, spec.model, batch, trivial_inputs
        )
        baseline = (input_dict.get("baseline_model") or [None])[0]
        baseline_metrics = None
        if baseline is not None:
            baseline_metrics, _ = evaluate_saved_model(
                path_utils.serving_model_path(baseline.uri), files, spec.model, batch
            )
        blessing = decide_blessing(metrics, spec.evaluator.metrics, baseline_metrics,
                                   spec.baseline_version if baseline else None,
                                   spec.evaluator.force_bless, trivial_metrics,
                                   spec.evaluator.trivial_baseline)
        logger.info("metrics %s; trivial %s; blessed=%s", metrics, trivial_metrics,
                    blessing.blessed)

        evaluation = output_dict["evaluation"][0]
        with fileio.open(os.path.join(evaluation.uri, METRICS_FILE), "w") as handle:
            handle.write(json.dumps({
                "metrics": metrics,
                "trivial_metrics": trivial_metrics,
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


def raw_feature_spec(transform_graph_uri: str) -> dict[str, Any]:
    """The raw tf.io feature spec the model's own signatures parse examples with."""
    import tensorflow_transform as tft

    return tft.TFTransformOutput(transform_graph_uri).raw_feature_spec()


def read_evaluation(evaluation_uri: str) -> dict[str, Any]:
    """What the executor wrote: metrics, trivial_metrics, baseline_metrics, blessing (JSON)."""
    with fileio.open(os.path.join(evaluation_uri, METRICS_FILE), "r") as handle:
        return json.load(handle)
