"""Distances between two statistics, measured by TFDV's own comparators.

`feature_distances` gives every feature both statistics know its distance: TFDV's
L-infinity comparator for string features and its Jensen-Shannon divergence for numeric ones,
run through `tfdv.validate_statistics` (drift: `previous_statistics`; skew:
`serving_statistics`) with a threshold of 1 so that every measurement is reported and none
is an anomaly; the gates (`retrain/domain/data_gates.py`) hold them to the configured
thresholds. `degenerate_features` finds features that are empty or constant in every split.
TFDV loads inside the functions: it takes seconds to import.
"""

from __future__ import annotations

from typing import Any

from retrain.adapters.tfx import prepare_tf_environment
from retrain.domain.data_gates import Comparison, FeatureDistance, Measure

# L-infinity and Jensen-Shannon (log2) never exceed 1: this threshold reports, never flags.
_REPORT_ALL = 1.0


def _name(feature: Any) -> str:
    return ".".join(feature.path.step) if feature.path.step else feature.name


def _common(feature: Any) -> Any | None:
    kind = feature.WhichOneof("stats")
    if kind == "num_stats":
        return feature.num_stats.common_stats
    if kind == "string_stats":
        return feature.string_stats.common_stats
    return None


def _has_values(feature: Any) -> bool:
    common = _common(feature)
    return common is not None and common.num_non_missing > 0 and common.tot_num_values > 0


def _features(stats_list: Any) -> dict[str, Any]:
    """The unsliced dataset's features by name."""
    if not stats_list.datasets:
        return {}
    return {_name(feature): feature for feature in stats_list.datasets[0].features}


def _schema_for(current: dict[str, Any], other: dict[str, Any], comparison: Comparison):
    """A schema naming each comparable feature with the comparator of its kind."""
    from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

    schema = schema_pb2.Schema()
    measures: dict[str, Measure] = {}
    for name, feature in sorted(current.items()):
        twin = other.get(name)
        if twin is None or "." in name or not (_has_values(feature) and _has_values(twin)):
            continue
        if feature.WhichOneof("stats") != twin.WhichOneof("stats"):
            continue
        entry = schema.feature.add(name=name)
        comparator = (entry.drift_comparator if comparison is Comparison.DRIFT
                      else entry.skew_comparator)
        if feature.WhichOneof("stats") == "string_stats":
            entry.type = schema_pb2.BYTES
            comparator.infinity_norm.threshold = _REPORT_ALL
            measures[name] = Measure.L_INFINITY
        else:
            entry.type = (schema_pb2.INT if feature.type == statistics_pb2.FeatureNameStatistics.INT
                          else schema_pb2.FLOAT)
            comparator.jensen_shannon_divergence.threshold = _REPORT_ALL
            measures[name] = Measure.JENSEN_SHANNON
    return schema, measures


def feature_distances(current: Any, other: Any, comparison: Comparison) -> list[FeatureDistance]:
    """Per-feature distances of `current` from `other` (two DatasetFeatureStatisticsList).

    Drift compares with `other` as the previous data, skew with `other` as the serving (here:
    eval) data. Features only one side has, or without values on either, have no distance.
    """
    prepare_tf_environment()
    import tensorflow_data_validation as tfdv

    schema, measures = _schema_for(_features(current), _features(other), comparison)
    if not measures:
        return []
    if comparison is Comparison.DRIFT:
        anomalies = tfdv.validate_statistics(current, schema, previous_statistics=other)
    else:
        anomalies = tfdv.validate_statistics(current, schema, serving_statistics=other)
    distances = []
    for info in anomalies.drift_skew_info:
        name = ".".join(info.path.step)
        measurements = (info.drift_measurements if comparison is Comparison.DRIFT
                        else info.skew_measurements)
        for measurement in measurements:
            if name in measures:
                distances.append(FeatureDistance(feature=name, measure=measures[name],
                                                 value=max(0.0, float(measurement.value))))
    return sorted(distances, key=lambda d: d.feature)


def _one_value(feature: Any) -> str | None:
    """The feature's single value when it has exactly one (None otherwise)."""
    if not _has_values(feature):
        return None
    if feature.WhichOneof("stats") == "num_stats":
        stats = feature.num_stats
        return f"{stats.min:g}" if stats.min == stats.max else None
    stats = feature.string_stats
    if stats.unique == 1 and stats.top_values:
        return stats.top_values[0].value
    return None


def degenerate_features(splits: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    """Features with no value in any row of any split, and features with one value (the
    same) in every split: (empty names, {constant name: its value})."""
    per_split = [_features(stats) for stats in splits.values()]
    names = sorted({name for features in per_split for name in features})
    empty, constant = [], {}
    for name in names:
        present = [features[name] for features in per_split if name in features]
        if not any(_has_values(feature) for feature in present):
            empty.append(name)
            continue
        values = {_one_value(feature) for feature in present}
        if len(present) == len(per_split) and len(values) == 1 and None not in values:
            constant[name] = values.pop()
    return empty, constant
