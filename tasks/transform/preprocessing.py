"""The library `preprocessing_fn`: the tf.Transform graph built from a typed FeatureConfig.

TFX's Transform executor loads `tasks.transform.preprocessing.preprocessing_fn` by dotted path and
passes `custom_config = {"features": FeatureConfig.model_dump(mode="json")}`. Every output is
named and typed by `FeatureConfig.xf_columns()` (plus the target), the contract the towers in
`tasks.trainer.models` read.

Missing values (a raw column is a SparseTensor when the schema lets values be absent):
- categorical and cross inputs become "" — tf.Transform never puts "" in a vocabulary, so a
  missing categorical value lands in an OOV bucket;
- numbers and timestamps become 0 (a missing timestamp reads as 1970-01-01 00:00 UTC, and
  zeros take part in the z-score mean and the quantiles like any other value);
- text becomes "" and yields no token ids;
- the target becomes `TargetConfig.default_value`, in raw units, before any transform.
- a feedback column (`FeatureConfig.feedback`) becomes NaN: the posterior fit skips it.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import tensorflow as tf
import tensorflow_transform as tft

from retrain.domain.features import (
    CategoricalFeature,
    CrossFeature,
    FeatureConfig,
    NumericFeature,
    TargetConfig,
    TextFeature,
    TimestampFeature,
)

_SECONDS_PER_DAY = 86_400
# 1970-01-01 was a Thursday: weekday 3 when Monday is 0.
_EPOCH_WEEKDAY = 3

Inputs = Mapping[str, tf.Tensor | tf.SparseTensor]


def preprocessing_fn(inputs: Inputs, custom_config: Mapping[str, Any] | None = None) -> dict:
    """Transform raw columns into the columns `FeatureConfig.xf_columns()` names (+ target).

    `custom_config["features"]` is a FeatureConfig or its JSON dump.
    """
    features = _feature_config(custom_config)
    _check_columns(features, inputs)
    outputs: dict[str, tf.Tensor | tf.SparseTensor] = {}
    for side in ("query", "candidate"):
        for feature in getattr(features, side):
            if isinstance(feature, CategoricalFeature):
                outputs.update(_categorical(feature, inputs, side))
            elif isinstance(feature, NumericFeature):
                outputs.update(_numeric(feature, inputs, side))
            elif isinstance(feature, TimestampFeature):
                outputs.update(_timestamp(feature, inputs))
            elif isinstance(feature, TextFeature):
                outputs.update(_text(feature, inputs, side))
            else:  # a new kind in the config must get a transform here, not be skipped
                raise TypeError(f"no transform for feature kind {feature.kind!r}")
    for cross in features.crosses:
        outputs.update(_cross(cross, inputs, features.tower_of(cross.columns[0])))
    if features.target is not None:
        outputs[features.target.xf_name] = _target(features.target, inputs)
    for feedback in features.feedback:
        outputs[feedback.xf_name] = _float(inputs[feedback.column], math.nan)
    return outputs


def _feature_config(custom_config: Mapping[str, Any] | None) -> FeatureConfig:
    raw = (custom_config or {}).get("features")
    if raw is None:
        raise ValueError(
            "preprocessing_fn needs custom_config={'features': FeatureConfig.model_dump()}; "
            f"got keys {sorted(custom_config or {})}"
        )
    return raw if isinstance(raw, FeatureConfig) else FeatureConfig.model_validate(raw)


def _check_columns(features: FeatureConfig, inputs: Inputs) -> None:
    # Fail while tracing, naming the column, rather than with a KeyError deep in Beam.
    wanted = features.raw_columns()
    if features.target is not None:
        wanted.append(features.target.column)
    wanted += [feedback.column for feedback in features.feedback]
    missing = [name for name in wanted if name not in inputs]
    if missing:
        raise ValueError(
            f"feature config column(s) {missing} not in the transform inputs; "
            f"available columns: {sorted(inputs)}"
        )


def dense_column(x: tf.Tensor | tf.SparseTensor, default) -> tf.Tensor:
    """[batch], [batch, 1] or SparseTensor [batch, 1] → dense [batch], missing → default."""
    if isinstance(x, tf.SparseTensor):
        # The declared dense_shape can be [batch, None]; one value per row is what we read.
        x = tf.sparse.to_dense(
            tf.SparseTensor(x.indices, x.values, [x.dense_shape[0], 1]), default
        )
    return tf.reshape(x, [-1])


def _map_values(fn, x: tf.Tensor | tf.SparseTensor) -> tf.Tensor | tf.SparseTensor:
    if isinstance(x, tf.SparseTensor):
        return tf.SparseTensor(x.indices, fn(x.values), x.dense_shape)
    return fn(x)


def string_column(x: tf.Tensor | tf.SparseTensor) -> tf.Tensor:
    """Dense string [batch]; integer ids are written as decimal strings, missing → ""."""
    if x.dtype != tf.string:
        x = _map_values(tf.strings.as_string, x)
    return dense_column(x, "")


def _float(x: tf.Tensor | tf.SparseTensor, default: float = 0.0) -> tf.Tensor:
    """Dense float32 [batch] from int or float input; cast before densifying so the default
    needs no integer form."""
    return dense_column(_map_values(lambda v: tf.cast(v, tf.float32), x), default)


def _categorical(feature: CategoricalFeature, inputs: Inputs, tower: str) -> dict:
    (column,) = feature.outputs(tower)
    values = string_column(inputs[feature.name])
    ids = tft.compute_and_apply_vocabulary(
        values,
        top_k=feature.top_k,
        frequency_threshold=feature.frequency_threshold,
        num_oov_buckets=feature.num_oov_buckets,
        vocab_filename=column.vocabulary,
    )
    return {column.name: ids}


def _numeric(feature: NumericFeature, inputs: Inputs, tower: str) -> dict:
    (column,) = feature.outputs(tower)
    x = _float(inputs[feature.name])
    if feature.transform == "zscore":
        return {column.name: tft.scale_to_z_score(x)}
    return {column.name: tft.bucketize(x, feature.num_buckets)}


def _seconds(x: tf.Tensor | tf.SparseTensor) -> tf.Tensor:
    """Unix seconds as int64 [batch]; float seconds are floored, missing → 0."""
    if x.dtype.is_floating:
        x = _map_values(lambda v: tf.cast(tf.math.floor(v), tf.int64), x)
    elif x.dtype != tf.int64:
        x = _map_values(lambda v: tf.cast(v, tf.int64), x)
    return dense_column(x, 0)


def _timestamp(feature: TimestampFeature, inputs: Inputs) -> dict:
    seconds = _seconds(inputs[feature.name])
    # Integer floor division first: float32 cannot hold today's unix seconds exactly.
    days = tf.math.floordiv(seconds, _SECONDS_PER_DAY)
    phases = {
        "hour": tf.cast(tf.math.floormod(seconds, _SECONDS_PER_DAY), tf.float64) / _SECONDS_PER_DAY,
        "weekday": tf.cast(tf.math.floormod(days + _EPOCH_WEEKDAY, 7), tf.float64) / 7.0,
    }
    outputs = {}
    for period in feature.cyclical:
        angle = 2.0 * math.pi * phases[period]
        outputs[feature.xf_name(f"{period}_sin")] = tf.cast(tf.math.sin(angle), tf.float32)
        outputs[feature.xf_name(f"{period}_cos")] = tf.cast(tf.math.cos(angle), tf.float32)
    if feature.day_buckets is not None:
        outputs[feature.xf_name("day")] = tft.bucketize(tf.cast(days, tf.float32),
                                                        feature.day_buckets)
    return outputs


def _text(feature: TextFeature, inputs: Inputs, tower: str) -> dict:
    (column,) = feature.outputs(tower)
    text = tf.strings.lower(string_column(inputs[feature.name]), encoding="utf-8")
    tokens = tf.strings.strip(tf.strings.split(text, sep=feature.delimiter))
    # Repeated or edge delimiters give empty tokens; they are not words.
    tokens = tf.ragged.boolean_mask(tokens, tf.strings.length(tokens) > 0)
    ids = tokens.with_flat_values(
        tf.strings.to_hash_bucket_fast(tokens.flat_values, feature.hash_buckets)
    )
    return {column.name: ids.to_sparse()}


def _cross(cross: CrossFeature, inputs: Inputs, tower: str) -> dict:
    (column,) = cross.outputs(tower)
    first, second = (string_column(inputs[name]) for name in cross.columns)
    joined = tf.strings.join([first, second], separator="_x_")
    return {column.name: tf.strings.to_hash_bucket_fast(joined, cross.hash_buckets)}


def _target(target: TargetConfig, inputs: Inputs) -> tf.Tensor:
    y = _float(inputs[target.column], target.default_value)
    if target.transform == "log1p":
        # Counts are never negative; a stray negative would give NaN or -inf.
        y = tf.math.log1p(tf.maximum(y, 0.0))
    return y
