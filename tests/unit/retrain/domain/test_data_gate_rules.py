"""The data gates' rules: thresholds per measure and per feature, actions, messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from retrain.domain.config import PipelineConfig
from retrain.domain.data_gates import (
    Comparison,
    DataGatesConfig,
    DistanceGate,
    FeatureDistance,
    GateAction,
    Measure,
    failing,
    failure_message,
    judge_degenerate,
    judge_distances,
)

L_INF, JSD = Measure.L_INFINITY, Measure.JENSEN_SHANNON
MODULE = str(Path(__file__).resolve().parents[4] / "synthetic" / "modules" / "rating_model.py")


def _distances(**values: tuple[Measure, float]) -> list[FeatureDistance]:
    return [FeatureDistance(feature=name, measure=measure, value=value)
            for name, (measure, value) in values.items()]


def test_a_distance_above_its_threshold_is_a_finding_and_equal_passes():
    gate = DistanceGate(action=GateAction.FAIL, categorical_threshold=0.1, numeric_threshold=0.2)
    found = judge_distances(Comparison.DRIFT, gate, _distances(
        category=(L_INF, 0.1000001), city=(L_INF, 0.1), price=(JSD, 0.2), rating=(JSD, 0.21)),
        "ratings #1")
    assert [(f.feature, f.threshold) for f in found] == [("category", 0.1), ("rating", 0.2)]
    assert found[0].message == ("drift: category L-infinity distance 0.1 > 0.1 against "
                                "ratings #1")
    assert found[1].message == ("drift: rating Jensen-Shannon divergence 0.21 > 0.2 against "
                                "ratings #1")
    assert all(f.action is GateAction.FAIL for f in found)


def test_each_measure_has_its_own_threshold():
    gate = DistanceGate(categorical_threshold=0.5, numeric_threshold=0.05)
    found = judge_distances(Comparison.SKEW, gate, _distances(
        category=(L_INF, 0.3), price=(JSD, 0.3)), "the train split")
    assert [f.feature for f in found] == ["price"]
    assert found[0].comparison is Comparison.SKEW and found[0].action is GateAction.WARN


def test_per_feature_thresholds_and_ignored_features():
    gate = DistanceGate(features={"price": 0.5}, ignore=["buyer_id"])
    found = judge_distances(Comparison.DRIFT, gate, _distances(
        price=(JSD, 0.4), buyer_id=(L_INF, 0.9), category=(L_INF, 0.4)), "m #1")
    assert [f.feature for f in found] == ["category"]
    assert gate.threshold("price", JSD) == 0.5 and gate.threshold("other", JSD) == 0.1


def test_an_off_gate_finds_nothing():
    gate = DistanceGate(action=GateAction.OFF, categorical_threshold=0.0)
    assert judge_distances(Comparison.DRIFT, gate, _distances(c=(L_INF, 1.0)), "m #1") == []


def test_empty_and_constant_features_are_named_with_their_actions():
    found = judge_degenerate(["notes"], {"country": "PL"}, DataGatesConfig())
    assert [(f.comparison, f.feature, f.action) for f in found] == [
        (Comparison.EMPTY, "notes", GateAction.FAIL),
        (Comparison.CONSTANT, "country", GateAction.WARN)]
    assert found[0].message == "empty: notes has no value in any row"
    assert found[1].message == "constant: country is PL in every row"
    assert failure_message(found) == "data gates failed: empty: notes has no value in any row"
    quiet = DataGatesConfig(empty_features=GateAction.OFF, constant_features=GateAction.OFF)
    assert judge_degenerate(["notes"], {"country": "PL"}, quiet) == []


def test_only_fail_findings_stop_the_run():
    gate = DistanceGate(action=GateAction.WARN, categorical_threshold=0.0)
    found = judge_distances(Comparison.DRIFT, gate, _distances(c=(L_INF, 0.5)), "m #1")
    assert found and failing(found) == []


def test_thresholds_are_distances_between_0_and_1():
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        DistanceGate(numeric_threshold=1.5)
    with pytest.raises(ValidationError, match="Input should be 'fail', 'warn' or 'off'"):
        DistanceGate(action="stop")


def test_gates_are_part_of_the_validator_config_with_defaults():
    config = PipelineConfig.model_validate({
        "model_name": "m", "input": {"uri": "/data"}, "transform": {"module_file": MODULE},
        "evaluator": {"label_key": "rating_xf"},
        "validator": {"gates": {"drift": {"action": "fail", "features": {"price": 0.3}}}}})
    gates = config.validator.gates
    assert gates.drift.action is GateAction.FAIL and gates.drift.features == {"price": 0.3}
    assert gates.skew.action is GateAction.WARN
    assert gates.empty_features is GateAction.FAIL
    assert gates.constant_features is GateAction.WARN
