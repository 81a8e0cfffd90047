"""Trivial predictors on hand-made arrays: majority class, train mean, most-popular items."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.evaluator.trivial import (
    ConstantScores,
    LabelTally,
    PopularityRecall,
    TrivialPredictor,
    by_metric,
    count_targets,
    perfect_score,
    popularity_places,
    predictor_for,
)


def test_each_metric_has_its_trivial_predictor_or_none():
    expected = {
        "BinaryAccuracy": TrivialPredictor.MAJORITY_CLASS,
        "binary_accuracy": TrivialPredictor.MAJORITY_CLASS,
        "Accuracy": TrivialPredictor.MAJORITY_CLASS,
        "AUC": TrivialPredictor.CONSTANT_SCORE,
        "RootMeanSquaredError": TrivialPredictor.TRAIN_MEAN,
        "MeanSquaredError": TrivialPredictor.TRAIN_MEAN,
        "MeanAbsoluteError": TrivialPredictor.TRAIN_MEAN,
        "rmse": TrivialPredictor.TRAIN_MEAN,
        "mae": TrivialPredictor.TRAIN_MEAN,
        "recall_at_5": TrivialPredictor.MOST_POPULAR,
        "recall_at_100": TrivialPredictor.MOST_POPULAR,
    }
    assert {metric: predictor_for(metric) for metric in expected} == expected
    for metric in ("ExampleCount", "example_count", "loss", "Precision", "recall_at_", "recall"):
        assert predictor_for(metric) is None
    assert [perfect_score(m) for m in ("BinaryAccuracy", "AUC", "recall_at_10", "rmse",
                                       "MeanSquaredError")] == [1.0, 1.0, 1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="loss has no trivial predictor"):
        perfect_score("loss")


# Majority class and train mean -------------------------------------------------------------
def test_majority_class_comes_from_train_and_is_scored_on_eval():
    train = LabelTally()
    train.add(np.array([0, 1, 0, 0]))
    train.add(np.array([[1], [0]]))  # (batch, 1) as a model's label column may come
    assert (train.majority_class, train.count) == (0, 6)
    scores = ConstantScores(train.majority_class, None)
    scores.add(np.array([1, 1, 1, 0]))  # eval's own majority is 1: it is not used
    assert scores.result() == {"accuracy": 0.25}


def test_majority_ties_go_to_the_smallest_class_and_strings_count_too():
    tied = LabelTally()
    tied.add(np.array([2, 1, 2, 1]))
    assert tied.majority_class == 1
    words = LabelTally()
    words.add(np.array([b"no", b"yes", b"no"], dtype=object))
    assert (words.majority_class, words.mean) == (b"no", None)


def test_too_many_distinct_labels_are_no_classes():
    tally = LabelTally(max_classes=3)
    tally.add(np.array([0.1, 0.2, 0.3]))
    assert tally.majority_class == pytest.approx(0.1)
    tally.add(np.array([0.4]))
    assert tally.majority_class is None and tally.mean == pytest.approx(0.25)
    assert LabelTally(max_classes=0).majority_class is None


def test_train_mean_errors_on_eval():
    train = LabelTally()
    train.add(np.array([1.0, 2.0, 3.0, 4.0, 5.0]))  # mean 3
    assert train.mean == 3.0
    scores = ConstantScores(None, train.mean)
    scores.add(np.array([1.0, 3.0]))
    scores.add(np.array([6.0]))
    errors = np.array([-2.0, 0.0, 3.0])
    result = scores.result()
    assert result["mse"] == pytest.approx(np.mean(errors ** 2))  # 13/3
    assert result["rmse"] == pytest.approx(np.sqrt(13 / 3))
    assert result["mae"] == pytest.approx(5 / 3)
    assert "accuracy" not in result


def test_no_rows_no_scores():
    assert LabelTally().mean is None and LabelTally().majority_class is None
    assert ConstantScores(0, 0.5).result() == {}
    with pytest.raises(ValueError, match="non-finite"):
        LabelTally().add(np.array([1.0, np.nan]))


def test_scores_under_metric_names():
    scores = {"accuracy": 0.775, "rmse": 1.1, "mse": 1.21, "mae": 0.9, "recall_at_100": 0.4}
    assert by_metric(scores, ["BinaryAccuracy", "AUC", "RootMeanSquaredError", "MeanSquaredError",
                              "MeanAbsoluteError", "rmse", "recall_at_100", "recall_at_5",
                              "ExampleCount"]) == {
        "BinaryAccuracy": 0.775, "AUC": 0.5, "RootMeanSquaredError": 1.1,
        "MeanSquaredError": 1.21, "MeanAbsoluteError": 0.9, "rmse": 1.1, "recall_at_100": 0.4}


# Most-popular items ------------------------------------------------------------------------
def test_popularity_places_count_the_more_popular_and_the_tied():
    above, tied = popularity_places(np.array([5, 1, 3, 0, 3]))
    assert above.tolist() == [0, 3, 1, 4, 1]
    assert tied.tolist() == [1, 1, 2, 1, 2]


def test_most_popular_recall_at_k():
    counts = np.zeros(4, dtype=np.int64)
    count_targets(counts, np.array([0, 0, 2, -1, 0, 2, 1, 0, 2]))  # -1: not in the corpus
    assert counts.tolist() == [4, 1, 3, 0]
    recall = PopularityRecall(counts, (1, 2, 3))
    # the list by popularity: item 0, item 2, item 1, item 3
    recall.add(np.array([0, 2, 1]))
    recall.add(np.array([3, -1]))  # last in the list, and a target outside the corpus
    assert recall.result() == {"recall_at_1": 1 / 5, "recall_at_2": 2 / 5, "recall_at_3": 3 / 5}


def test_tied_items_share_their_places():
    # Items 1, 2, 3 tie for places 2-4 behind item 0: top-2 holds one of the three, top-3 two.
    recall = PopularityRecall(np.array([9, 4, 4, 4, 1]), (1, 2, 3, 4))
    recall.add(np.array([2]))
    assert recall.result() == pytest.approx(
        {"recall_at_1": 0.0, "recall_at_2": 1 / 3, "recall_at_3": 2 / 3, "recall_at_4": 1.0})
    # the same whichever of the tied items is the target: corpus order does not matter
    for target in (1, 3):
        other = PopularityRecall(np.array([9, 4, 4, 4, 1]), (1, 2, 3, 4))
        other.add(np.array([target]))
        assert other.result() == recall.result()


def test_most_popular_recall_checks_its_input():
    recall = PopularityRecall(np.array([1, 2]), (1,))
    assert recall.result() == {}
    with pytest.raises(ValueError, match=r"target_index must lie in \[-1, 2\)"):
        recall.add(np.array([2]))
