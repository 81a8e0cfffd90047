"""The blessing decision: each rule at, above and below its bound, in both directions."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from tasks.evaluator.blessing import FIRST_RUN_MESSAGE, decide_blessing, failed_lines
from retrain.domain.evaluation import EvaluatorConfig, ForceBless, MetricThreshold, TrivialBaseline
from retrain.domain.refs import RuleResult

RECALL = "recall_at_100"


def only_rule(blessing, rule):
    """The single rule of a kind in a blessing."""
    matches = [r for r in blessing.rules if r.rule == rule]
    assert len(matches) == 1, blessing.rules
    return matches[0]


# Absolute bounds ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "passed"), [(0.45, True), (0.4500001, True), (0.4499999, False), (0.9, True)]
)
def test_lower_bound(value, passed):
    blessing = decide_blessing({RECALL: value}, [MetricThreshold(class_name=RECALL,
                                                                 lower_bound=0.45)], None)
    rule = only_rule(blessing, "lower_bound")
    assert (blessing.blessed, rule.passed) == (passed, passed)
    assert (rule.metric, rule.value, rule.threshold, rule.baseline_value) == (
        RECALL, value, 0.45, None)


@pytest.mark.parametrize(("value", "passed"), [(0.9, True), (0.8999, True), (0.9001, False)])
def test_upper_bound(value, passed):
    blessing = decide_blessing({"rmse": value}, [MetricThreshold(class_name="rmse",
                                                                 upper_bound=0.9)], None)
    assert blessing.blessed is passed
    assert only_rule(blessing, "upper_bound").passed is passed


def test_bounds_hold_regardless_of_direction():
    # A lower bound is a floor even on a lower-is-better metric, and an upper bound a ceiling.
    thresholds = [MetricThreshold(class_name="rmse", lower_bound=0.1, upper_bound=0.9),
                  MetricThreshold(class_name=RECALL, lower_bound=0.2, upper_bound=0.3)]
    blessing = decide_blessing({"rmse": 0.05, RECALL: 0.35}, thresholds, None)
    assert [(r.metric, r.rule, r.passed) for r in blessing.rules[1:]] == [
        ("rmse", "lower_bound", False), ("rmse", "upper_bound", True),
        (RECALL, "lower_bound", True), (RECALL, "upper_bound", False)]


def test_failure_messages_read_as_one_line():
    thresholds = [MetricThreshold(class_name=RECALL, lower_bound=0.45),
                  MetricThreshold(class_name="rmse", upper_bound=0.9, max_regression=0.05)]
    blessing = decide_blessing({RECALL: 0.412, "rmse": 0.91}, thresholds, {"rmse": 0.85})
    assert failed_lines(blessing) == [
        "recall_at_100 0.412 < lower bound 0.45",
        "rmse 0.91 > upper bound 0.9",
        "rmse 0.91 > baseline 0.85 + 0.05 (max regression)",
    ]
    passing = decide_blessing({RECALL: 0.5}, thresholds[:1], None)
    assert passing.rules[1].message == "recall_at_100 0.5 >= lower bound 0.45"


def test_near_misses_show_enough_digits_to_differ():
    blessing = decide_blessing({RECALL: 0.44999}, [MetricThreshold(class_name=RECALL,
                                                                   lower_bound=0.45)], None)
    assert failed_lines(blessing) == ["recall_at_100 0.44999 < lower bound 0.45"]


def test_nan_fails_every_bound():
    thresholds = [MetricThreshold(class_name="rmse", lower_bound=0.0, upper_bound=1.0)]
    blessing = decide_blessing({"rmse": float("nan")}, thresholds, None)
    assert not blessing.blessed
    assert failed_lines(blessing) == ["rmse nan is not >= lower bound 0",
                                      "rmse nan is not <= upper bound 1"]


# Change rules ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "passed"), [(0.43, True), (0.431, True), (0.429, False), (0.5, True)]
)
def test_max_regression_higher_is_better(value, passed):
    threshold = MetricThreshold(class_name=RECALL, max_regression=0.02)
    blessing = decide_blessing({RECALL: value}, [threshold], {RECALL: 0.45}, "7")
    rule = only_rule(blessing, "max_regression")
    assert (blessing.blessed, rule.passed) == (passed, passed)
    assert (rule.value, rule.threshold, rule.baseline_value) == (value, 0.45 - 0.02, 0.45)


@pytest.mark.parametrize(("value", "passed"), [(0.9, True), (0.8, True), (0.9001, False)])
def test_max_regression_lower_is_better_inferred_from_the_name(value, passed):
    threshold = MetricThreshold(class_name="rmse", max_regression=0.05)
    assert threshold.better_higher is False
    blessing = decide_blessing({"rmse": value}, [threshold], {"rmse": 0.85})
    rule = only_rule(blessing, "max_regression")
    assert (rule.passed, rule.threshold, rule.baseline_value) == (passed, 0.85 + 0.05, 0.85)


def test_zero_max_regression_means_not_worse_than_the_baseline():
    threshold = MetricThreshold(class_name="mae", max_regression=0.0)
    assert decide_blessing({"mae": 0.5}, [threshold], {"mae": 0.5}).blessed
    assert not decide_blessing({"mae": 0.5000001}, [threshold], {"mae": 0.5}).blessed


def test_explicit_direction_overrides_the_name():
    threshold = MetricThreshold(class_name="rmse", higher_is_better=True, max_regression=0.0)
    assert decide_blessing({"rmse": 0.9}, [threshold], {"rmse": 0.85}).blessed
    assert not decide_blessing({"rmse": 0.8}, [threshold], {"rmse": 0.85}).blessed


def test_bound_decided_by_rounding_is_shown():
    # 0.1 + 0.2 is 0.30000000000000004 in floating point: 0.3 passes, and the message says why.
    threshold = MetricThreshold(class_name="loss", max_regression=0.2)
    blessing = decide_blessing({"loss": 0.3}, [threshold], {"loss": 0.1})
    assert blessing.blessed
    assert blessing.rules[0].message == (
        "loss 0.3 <= baseline 0.1 + 0.2 = 0.30000000000000004 (max regression)")


@pytest.mark.parametrize(
    ("value", "passed"), [(0.441, True), (0.4411, True), (0.4409, False)]
)
def test_relative_tolerance_higher_is_better(value, passed):
    threshold = MetricThreshold(class_name=RECALL, relative_tolerance=0.02)
    blessing = decide_blessing({RECALL: value}, [threshold], {RECALL: 0.45})
    rule = only_rule(blessing, "relative_tolerance")
    assert rule.passed is passed
    assert (rule.threshold, rule.baseline_value) == (0.45 - 0.02 * 0.45, 0.45)


@pytest.mark.parametrize(
    ("higher", "value", "passed"),
    [
        # Base -2 with 10% tolerance: the bound is -2.2 when higher is better, -1.8 when lower.
        (True, -2.2, True), (True, -2.0, True), (True, -2.21, False),
        (False, -1.8, True), (False, -2.5, True), (False, -1.79, False),
    ],
)
def test_relative_tolerance_with_a_negative_baseline(higher, value, passed):
    threshold = MetricThreshold(class_name="score", higher_is_better=higher,
                                relative_tolerance=0.1)
    blessing = decide_blessing({"score": value}, [threshold], {"score": -2.0})
    rule = only_rule(blessing, "relative_tolerance")
    assert rule.passed is passed
    assert rule.threshold == pytest.approx(-2.2 if higher else -1.8)
    assert (rule.threshold < -2.0) is higher


def test_relative_tolerance_message():
    threshold = MetricThreshold(class_name="rmse", relative_tolerance=0.1)
    blessing = decide_blessing({"rmse": 1.2}, [threshold], {"rmse": 1.0})
    assert failed_lines(blessing) == [
        "rmse 1.2 > 1.1 = baseline 1 + 10% (relative tolerance)"]


def test_rules_come_in_config_order():
    thresholds = [
        MetricThreshold(class_name="rmse", lower_bound=0.0, upper_bound=2.0, max_regression=0.1,
                        relative_tolerance=0.1),
        MetricThreshold(class_name=RECALL, lower_bound=0.1),
    ]
    blessing = decide_blessing({"rmse": 1.0, RECALL: 0.5}, thresholds, {"rmse": 1.0})
    assert [(r.metric, r.rule) for r in blessing.rules] == [
        ("rmse", "lower_bound"), ("rmse", "upper_bound"), ("rmse", "max_regression"),
        ("rmse", "relative_tolerance"), (RECALL, "lower_bound")]
    assert blessing.blessed


# First run ---------------------------------------------------------------------------------
def test_first_run_skips_change_rules_that_would_fail():
    thresholds = [MetricThreshold(class_name=RECALL, lower_bound=0.1, max_regression=0.0,
                                  relative_tolerance=0.0)]
    blessing = decide_blessing({RECALL: 0.2}, thresholds, None)
    assert blessing.blessed
    assert blessing.rules == [
        RuleResult(metric="*", rule="first_run", passed=True, message=FIRST_RUN_MESSAGE),
        RuleResult(metric=RECALL, rule="lower_bound", passed=True, value=0.2, threshold=0.1,
                   message="recall_at_100 0.2 >= lower bound 0.1"),
    ]
    assert FIRST_RUN_MESSAGE == (
        "no baseline (first run): change thresholds skipped, absolute thresholds only")
    # The same thresholds against a better baseline do fail.
    assert not decide_blessing({RECALL: 0.2}, thresholds, {RECALL: 0.3}).blessed


def test_first_run_still_applies_absolute_bounds():
    thresholds = [MetricThreshold(class_name=RECALL, lower_bound=0.3, max_regression=0.0)]
    blessing = decide_blessing({RECALL: 0.2}, thresholds, None)
    assert not blessing.blessed
    assert [r.rule for r in blessing.rules] == ["first_run", "lower_bound"]


def test_an_empty_baseline_is_not_a_first_run():
    blessing = decide_blessing({RECALL: 0.2}, [], {})
    assert blessing.blessed and blessing.rules == []
    assert blessing.baseline_metrics == {}


# Missing metrics ---------------------------------------------------------------------------
def test_metric_missing_from_the_candidate_fails():
    thresholds = [MetricThreshold(class_name=RECALL, lower_bound=0.1, max_regression=0.1),
                  MetricThreshold(class_name="example_count")]
    blessing = decide_blessing({"example_count": 10.0}, thresholds, {RECALL: 0.2})
    assert not blessing.blessed
    assert [(r.metric, r.rule, r.passed) for r in blessing.rules] == [
        (RECALL, "missing_metric", False)]
    assert failed_lines(blessing) == ["recall_at_100 missing from the candidate's metrics"]


def test_a_threshold_without_rules_still_needs_its_metric():
    blessing = decide_blessing({}, [MetricThreshold(class_name="example_count")], None)
    assert failed_lines(blessing) == ["example_count missing from the candidate's metrics"]


def test_metric_missing_from_the_baseline_fails_change_rules_only():
    thresholds = [MetricThreshold(class_name="rmse", upper_bound=1.0, max_regression=0.1,
                                  relative_tolerance=0.1),
                  MetricThreshold(class_name=RECALL, lower_bound=0.1)]
    blessing = decide_blessing({"rmse": 0.5, RECALL: 0.5}, thresholds, {RECALL: 0.5}, "12")
    assert not blessing.blessed
    assert [(r.metric, r.rule, r.passed) for r in blessing.rules] == [
        ("rmse", "upper_bound", True), ("rmse", "missing_metric", False),
        (RECALL, "lower_bound", True)]
    assert failed_lines(blessing) == [
        "rmse missing from the metrics of the baseline (version 12)"]
    unversioned = decide_blessing({"rmse": 0.5}, thresholds[:1], {})
    assert failed_lines(unversioned) == ["rmse missing from the metrics of the baseline"]


def test_absolute_thresholds_need_no_baseline_metric():
    thresholds = [MetricThreshold(class_name="rmse", upper_bound=1.0)]
    assert decide_blessing({"rmse": 0.5}, thresholds, {}).blessed


# Force-bless -------------------------------------------------------------------------------
def test_force_bless_keeps_the_failures_on_record():
    thresholds = [MetricThreshold(class_name=RECALL, lower_bound=0.45),
                  MetricThreshold(class_name="rmse", max_regression=0.0)]
    blessing = decide_blessing({RECALL: 0.4, "rmse": 0.9}, thresholds, {"rmse": 0.8},
                               force_bless=ForceBless(reason="hotfix for INC-42"))
    assert blessing.blessed
    assert blessing.forced_reason == "hotfix for INC-42"
    assert [(r.metric, r.rule) for r in blessing.failed] == [
        (RECALL, "lower_bound"), ("rmse", "max_regression")]
    assert failed_lines(blessing) == [
        "recall_at_100 0.4 < lower bound 0.45", "rmse 0.9 > baseline 0.8 + 0 (max regression)"]
    assert blessing.rules[-1] == RuleResult(
        metric="*", rule="force_bless", passed=True,
        message="forced: hotfix for INC-42 (overrides: recall_at_100 lower_bound, "
        "rmse max_regression)")


def test_force_bless_without_failures():
    thresholds = [MetricThreshold(class_name=RECALL, lower_bound=0.1)]
    blessing = decide_blessing({RECALL: 0.4}, thresholds, None,
                               force_bless=ForceBless(reason="manual promotion"))
    assert blessing.blessed and blessing.forced_reason == "manual promotion"
    assert [r.rule for r in blessing.rules] == ["first_run", "lower_bound", "force_bless"]
    assert blessing.rules[-1].message == "forced: manual promotion"
    assert failed_lines(blessing) == []


def test_unforced_blessing_has_no_reason():
    blessing = decide_blessing({RECALL: 0.4}, [], None)
    assert blessing.forced_reason is None
    assert [r.rule for r in blessing.rules] == ["first_run"]


# The record --------------------------------------------------------------------------------
def test_baseline_is_recorded():
    baseline = {RECALL: 0.45, "rmse": 0.8}
    blessing = decide_blessing({RECALL: 0.5}, [MetricThreshold(class_name=RECALL,
                                                               max_regression=0.0)],
                               baseline, baseline_version="3")
    assert blessing.baseline_version == "3"
    assert blessing.baseline_metrics == baseline
    first = decide_blessing({RECALL: 0.5}, [], None)
    assert (first.baseline_version, first.baseline_metrics) == (None, None)


def test_no_thresholds_blesses():
    blessing = decide_blessing({}, [], {RECALL: 0.5}, "4")
    assert blessing.blessed and blessing.rules == [] and failed_lines(blessing) == []
    assert blessing.baseline_version == "4"


# Trivial baseline --------------------------------------------------------------------------
ACCURACY = "BinaryAccuracy"


def trivial_blessing(metric, value, trivial, margin=0.25, force_bless=None, **threshold):
    """A first-run blessing of one thresholded metric against its trivial predictor."""
    return decide_blessing({metric: value}, [MetricThreshold(class_name=metric, **threshold)],
                           None, force_bless=force_bless, trivial_metrics={metric: trivial},
                           trivial_baseline=TrivialBaseline(margin=margin))


@pytest.mark.parametrize(
    ("value", "passed"),
    # Majority class 0.75, margin 25% of its distance to 1: the bound is 0.8125.
    [(0.8125, True), (np.nextafter(0.8125, 0), False), (0.75, False), (0.9, True)],
)
def test_trivial_baseline_at_the_margin_higher_is_better(value, passed):
    blessing = trivial_blessing(ACCURACY, value, 0.75)
    rule = only_rule(blessing, "trivial_baseline")
    assert (blessing.blessed, rule.passed) == (passed, passed)
    assert (rule.metric, rule.value, rule.trivial_value, rule.threshold) == (
        ACCURACY, value, 0.75, 0.8125)


@pytest.mark.parametrize(
    ("value", "passed"),
    # Train-mean RMSE 1.0, margin 25% of its distance to 0: the bound is 0.75.
    [(0.75, True), (np.nextafter(0.75, 1), False), (1.0, False), (0.5, True)],
)
def test_trivial_baseline_at_the_margin_lower_is_better(value, passed):
    blessing = trivial_blessing("rmse", value, 1.0)
    rule = only_rule(blessing, "trivial_baseline")
    assert (blessing.blessed, rule.passed, rule.threshold) == (passed, passed, 0.75)


def test_trivial_baseline_direction_comes_from_the_threshold():
    # Declared higher-is-better, an error must rise above the trivial value to pass.
    assert trivial_blessing("mae", 1.25, 1.0, higher_is_better=True).blessed
    assert not trivial_blessing("mae", 0.5, 1.0, higher_is_better=True).blessed


def test_trivial_baseline_messages_name_both_values():
    failing = trivial_blessing(ACCURACY, 0.7751, 0.7751, margin=0.05)
    assert failed_lines(failing) == [
        "BinaryAccuracy 0.7751 does not beat the majority-class predictor's 0.7751 by 5% of "
        "its distance to 1 (needs >= 0.7863) (trivial baseline)"]
    passing = trivial_blessing("rmse", 0.9, 1.1, margin=0.05)
    assert only_rule(passing, "trivial_baseline").message == (
        "rmse 0.9 beats the train-mean predictor's 1.1 by 5% of its distance to 0 (<= 1.045) "
        "(trivial baseline)")
    recall = trivial_blessing(RECALL, 0.3, 0.3001, margin=0.0)
    assert failed_lines(recall) == [
        "recall_at_100 0.3 does not beat the most-popular-items predictor's 0.3001 by 0% of "
        "its distance to 1 (needs >= 0.3001) (trivial baseline)"]


def test_zero_margin_means_not_worse_than_the_trivial_predictor():
    assert trivial_blessing(ACCURACY, 0.75, 0.75, margin=0.0).blessed
    assert not trivial_blessing(ACCURACY, 0.7499, 0.75, margin=0.0).blessed


def test_a_perfect_trivial_predictor_is_matched_not_beaten():
    # Every eval label is the majority class: only a perfect model ties it.
    assert trivial_blessing(ACCURACY, 1.0, 1.0).blessed
    assert not trivial_blessing(ACCURACY, 0.99, 1.0).blessed


def test_nan_never_beats_the_trivial_predictor():
    blessing = trivial_blessing("rmse", float("nan"), 1.0)
    assert not blessing.blessed
    assert "rmse nan does not beat" in failed_lines(blessing)[0]


def test_force_bless_overrides_a_failed_trivial_baseline():
    blessing = trivial_blessing(ACCURACY, 0.75, 0.75, lower_bound=0.6,
                                force_bless=ForceBless(reason="known weak model, INC-7"))
    assert blessing.blessed and blessing.forced_reason == "known weak model, INC-7"
    assert [(r.rule, r.passed) for r in blessing.rules] == [
        ("first_run", True), ("lower_bound", True), ("trivial_baseline", False),
        ("force_bless", True)]
    assert blessing.rules[-1].message == (
        "forced: known weak model, INC-7 (overrides: BinaryAccuracy trivial_baseline)")


def test_trivial_rule_follows_its_metrics_own_rules_in_config_order():
    thresholds = [MetricThreshold(class_name="rmse", upper_bound=2.0, max_regression=0.1),
                  MetricThreshold(class_name="example_count"),
                  MetricThreshold(class_name=RECALL, lower_bound=0.1)]
    trivial = {"rmse": 1.0, RECALL: 0.2, "mae": 0.1}
    blessing = decide_blessing({"rmse": 0.5, RECALL: 0.5, "example_count": 9.0, "mae": 0.9},
                               thresholds, {"rmse": 0.5}, trivial_metrics=trivial)
    assert [(r.metric, r.rule) for r in blessing.rules] == [
        ("rmse", "upper_bound"), ("rmse", "max_regression"), ("rmse", "trivial_baseline"),
        (RECALL, "lower_bound"), (RECALL, "trivial_baseline")]
    assert blessing.blessed  # mae is not thresholded: its trivial value decides nothing


def test_no_trivial_rule_when_off_or_without_a_trivial_predictor():
    thresholds = [MetricThreshold(class_name=ACCURACY, lower_bound=0.6),
                  MetricThreshold(class_name="loss", upper_bound=1.0)]
    metrics, trivial = {ACCURACY: 0.7, "loss": 0.5}, {ACCURACY: 0.75, "loss": 0.6}
    off = decide_blessing(metrics, thresholds, None, trivial_metrics=trivial,
                          trivial_baseline=TrivialBaseline(enabled=False))
    assert off.blessed and "trivial_baseline" not in [r.rule for r in off.rules]
    on = decide_blessing(metrics, thresholds, None, trivial_metrics=trivial)
    assert [(r.metric, r.rule, r.passed) for r in on.failed] == [
        (ACCURACY, "trivial_baseline", False)]  # 'loss' has no trivial predictor: no rule
    assert decide_blessing(metrics, thresholds, None).blessed  # no trivial values, no rule


def test_a_missing_candidate_metric_gets_only_its_missing_metric_rule():
    blessing = decide_blessing({}, [MetricThreshold(class_name="rmse", upper_bound=1.0)], None,
                               trivial_metrics={"rmse": 1.0})
    assert [r.rule for r in blessing.rules] == ["first_run", "missing_metric"]


def test_trivial_baseline_config():
    default = TrivialBaseline()
    assert (default.enabled, default.margin) == (True, 0.05)
    assert EvaluatorConfig().trivial_baseline == default
    for margin in (-0.01, 1.0):
        with pytest.raises(ValidationError):
            TrivialBaseline(margin=margin)
    for model in (TrivialBaseline, EvaluatorConfig):
        assert all(field.description for field in model.model_fields.values())
