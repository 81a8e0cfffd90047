"""TFDV's comparators, as the gates use them, against distances computed by hand.

The statistics are built by hand, so each distance is known: L-infinity is the largest
difference of two value shares; Jensen-Shannon divergence (log base 2) of histograms P and Q
with M = (P + Q) / 2 is (KL(P||M) + KL(Q||M)) / 2.
"""

from __future__ import annotations

import math

import pytest

from retrain.adapters.tfdv_drift import degenerate_features, feature_distances
from retrain.domain.data_gates import Comparison, DistanceGate, GateAction, Measure, judge_distances


def _stats(numeric: dict[str, list[tuple[float, float, float]]] | None = None,
           categorical: dict[str, list[tuple[str, int]]] | None = None, rows: int = 20):
    """A one-dataset statistics list: numeric features as (low, high, count) buckets,
    categorical ones as (value, count)."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    stats = statistics_pb2.DatasetFeatureStatisticsList()
    dataset = stats.datasets.add(num_examples=rows)
    for name, buckets in (numeric or {}).items():
        feature = dataset.features.add(type=statistics_pb2.FeatureNameStatistics.FLOAT)
        feature.path.step.append(name)
        present = int(sum(count for _, _, count in buckets))
        feature.num_stats.common_stats.num_non_missing = present
        feature.num_stats.common_stats.tot_num_values = present
        filled = [(low, high) for low, high, count in buckets if count] or [(0.0, 0.0)]
        feature.num_stats.min, feature.num_stats.max = filled[0][0], filled[-1][1]
        histogram = feature.num_stats.histograms.add(
            type=statistics_pb2.Histogram.STANDARD)
        for low, high, count in buckets:
            histogram.buckets.add(low_value=low, high_value=high, sample_count=count)
    for name, values in (categorical or {}).items():
        feature = dataset.features.add(type=statistics_pb2.FeatureNameStatistics.STRING)
        feature.path.step.append(name)
        present = sum(count for _, count in values)
        feature.string_stats.common_stats.num_non_missing = present
        feature.string_stats.common_stats.tot_num_values = present
        feature.string_stats.unique = len([v for v in values if v[1]])
        for value, count in sorted(values, key=lambda v: -v[1]):
            feature.string_stats.top_values.add(value=value, frequency=count)
            feature.string_stats.rank_histogram.buckets.add(label=value, sample_count=count)
    return stats


def _jsd(p: list[float], q: list[float]) -> float:
    def kl(a, b):
        return sum(x * math.log2(x / y) for x, y in zip(a, b) if x > 0)

    m = [(x + y) / 2 for x, y in zip(p, q)]
    return (kl(p, m) + kl(q, m)) / 2


def _by_feature(distances):
    return {d.feature: d for d in distances}


@pytest.mark.parametrize("comparison", [Comparison.DRIFT, Comparison.SKEW])
def test_l_infinity_of_a_shifted_category_mix(comparison):
    previous = _stats(categorical={"category": [("a", 10), ("b", 6), ("c", 4)]})
    current = _stats(categorical={"category": [("a", 4), ("b", 6), ("c", 10)]})
    found = _by_feature(feature_distances(current, previous, comparison))
    # shares a: 0.5 -> 0.2, b: 0.3 -> 0.3, c: 0.2 -> 0.5: the largest move is 0.3
    assert found["category"].measure is Measure.L_INFINITY
    assert found["category"].value == pytest.approx(0.3)


@pytest.mark.parametrize("comparison", [Comparison.DRIFT, Comparison.SKEW])
def test_jensen_shannon_of_two_histograms(comparison):
    previous = _stats(numeric={"price": [(0, 1, 10), (1, 2, 10)]})
    current = _stats(numeric={"price": [(0, 1, 15), (1, 2, 5)]})
    found = _by_feature(feature_distances(current, previous, comparison))
    assert found["price"].measure is Measure.JENSEN_SHANNON
    assert found["price"].value == pytest.approx(_jsd([0.5, 0.5], [0.75, 0.25]), rel=1e-9)
    disjoint = _stats(numeric={"price": [(0, 1, 20), (1, 2, 0)]})
    half = _stats(numeric={"price": [(0, 1, 0), (1, 2, 20)]})
    assert feature_distances(disjoint, half, comparison)[0].value == pytest.approx(1.0)


def test_identical_data_is_at_distance_zero_and_passes_any_threshold():
    stats = _stats(numeric={"price": [(0, 1, 7), (1, 2, 13)]},
                   categorical={"city": [("Warsaw", 12), ("Krakow", 8)]})
    distances = feature_distances(stats, stats, Comparison.DRIFT)
    assert {d.feature: d.value for d in distances} == {"city": 0.0, "price": 0.0}
    strict = DistanceGate(action=GateAction.FAIL, categorical_threshold=0.0, numeric_threshold=0.0)
    assert judge_distances(Comparison.DRIFT, strict, distances, "m #1") == []


def test_the_configured_threshold_decides_around_the_hand_computed_distance():
    previous = _stats(categorical={"category": [("a", 10), ("b", 10)]},
                      numeric={"price": [(0, 1, 10), (1, 2, 10)]})
    current = _stats(categorical={"category": [("a", 13), ("b", 7)]},
                     numeric={"price": [(0, 1, 12), (1, 2, 8)]})
    distances = feature_distances(current, previous, Comparison.DRIFT)
    l_inf, jsd = 0.15, _jsd([0.5, 0.5], [0.6, 0.4])  # 0.65 - 0.5; ~0.00725
    for categorical, numeric, flagged in [
        (0.149, 0.0072, ["category", "price"]),
        (0.151, 0.0072, ["price"]),
        (0.149, 0.0073, ["category"]),
        (0.151, 0.0073, []),
    ]:
        gate = DistanceGate(categorical_threshold=categorical, numeric_threshold=numeric)
        found = judge_distances(Comparison.DRIFT, gate, distances, "m #1")
        assert [f.feature for f in found] == flagged, (categorical, numeric)
    assert {d.feature: d.value for d in distances} == pytest.approx(
        {"category": l_inf, "price": jsd}, rel=1e-9)


def test_features_only_one_side_has_get_no_distance():
    previous = _stats(categorical={"city": [("x", 20)]})
    current = _stats(categorical={"city": [("x", 20)], "country": [("PL", 20)]})
    assert [d.feature for d in feature_distances(current, previous, Comparison.DRIFT)] == ["city"]


def test_empty_and_constant_features_across_splits():
    train = _stats(numeric={"price": [(0, 1, 10), (1, 2, 10)], "blank": [(0, 0, 0)],
                            "one": [(3, 3, 20)]},
                   categorical={"country": [("PL", 20)], "city": [("a", 10), ("b", 10)]})
    evaluation = _stats(numeric={"price": [(0, 1, 5), (1, 2, 5)], "blank": [(0, 0, 0)],
                                 "one": [(3, 3, 10)]},
                        categorical={"country": [("PL", 10)], "city": [("a", 10)]})
    empty, constant = degenerate_features({"train": train, "eval": evaluation})
    assert empty == ["blank"]
    assert constant == {"country": "PL", "one": "3"}  # city has two values in train
    other_country = _stats(categorical={"country": [("DE", 10)]})
    assert degenerate_features({"train": train, "eval": other_country})[1] == {}
