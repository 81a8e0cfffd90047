"""Which way a metric improves, as the model card and the STAC item report it."""

from __future__ import annotations

import pytest

from retrain.domain.evaluation import MetricThreshold, higher_is_better


@pytest.mark.parametrize("metric, expected", [
    ("mean_absolute_error", False), ("rmse", False), ("mae", False), ("loss", False),
    ("binary_crossentropy", False), ("recall_at_100", True), ("binary_accuracy", True),
    ("auc", True), ("example_count", True),
])
def test_errors_and_losses_are_better_lower(metric, expected):
    assert higher_is_better(metric, []) is expected


def test_a_configured_threshold_decides_the_direction():
    thresholds = [MetricThreshold(class_name="MeanAbsoluteError", upper_bound=1.0),
                  MetricThreshold(class_name="calibration", higher_is_better=False)]
    assert higher_is_better("mean_absolute_error", thresholds) is False
    assert higher_is_better("calibration", thresholds) is False
