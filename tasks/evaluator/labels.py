"""Trivial predictors of a user module's label, for the TFMA path.

TFMA reads the label (`evaluator.label_key`) from the transformed features when Transform
outputs it (TFX's taxi example: `tips_xf`), else from the raw example. The trivial predictors
read it from the same place: Transform's transformed examples (or the raw Examples), the
train split for the majority class and the mean, the eval splits (the rows TFMA scores, one
transformed row per raw row) for their scores.
"""

from __future__ import annotations

from typing import Sequence

from tasks.evaluator import trivial
from tasks.evaluator.columns import column_batches, split_files

TRAIN_SPLIT = "train"


def label_source(label_key: str, transform_graph_uri: str, transformed_examples_uri: str | None,
                 examples_uri: str) -> tuple[str, object]:
    """(Examples URI, tf.io feature spec) the label is read from, as TFMA reads it."""
    import tensorflow_transform as tft

    output = tft.TFTransformOutput(transform_graph_uri)
    transformed = output.transformed_feature_spec()
    if transformed_examples_uri and label_key in transformed:
        return transformed_examples_uri, transformed[label_key]
    raw = output.raw_feature_spec()
    if label_key in raw:
        return examples_uri, raw[label_key]
    raise ValueError(f"evaluator.label_key {label_key!r} is neither a transformed nor a raw "
                     f"feature (transformed: {sorted(transformed)})")


def trivial_label_metrics(
    metrics: Sequence[str], label_key: str, transform_graph_uri: str,
    transformed_examples_uri: str | None, examples_uri: str, eval_splits: list[str],
    batch_size: int,
) -> dict[str, float]:
    """The trivial predictors' values of those `metrics` that have one, keyed by metric."""
    predictors = {trivial.predictor_for(metric) for metric in metrics} - {None}
    if not predictors:
        return {}
    uri, spec = label_source(label_key, transform_graph_uri, transformed_examples_uri,
                             examples_uri)
    wants_classes = trivial.TrivialPredictor.MAJORITY_CLASS in predictors
    tally = trivial.LabelTally(max_classes=trivial.MAX_CLASSES if wants_classes else 0)
    for batch in column_batches(split_files(uri, [TRAIN_SPLIT]), {label_key: spec}, batch_size):
        values, present = batch[label_key]
        tally.add(values[present])
    scores = trivial.ConstantScores(tally.majority_class, tally.mean)
    for batch in column_batches(split_files(uri, eval_splits), {label_key: spec}, batch_size):
        values, present = batch[label_key]
        scores.add(values[present])
    return trivial.by_metric(scores.result(), metrics)
