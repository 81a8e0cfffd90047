"""Recommender evaluation metrics against brute-force references and hand-checked numbers."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from tasks.evaluator.metrics import RecallAccumulator, RegressionAccumulator


def reference_recall(candidates, queries, targets, ks):
    """Recall@k the slow, obvious way: sort every query's scores, find the target's place."""
    hits = dict.fromkeys(ks, 0)
    for query, target in zip(queries, targets):
        if target < 0:
            continue
        scores = np.array([float(np.dot(query, c)) for c in candidates])
        order = np.argsort(-scores, kind="stable")
        # Ties in the target's favour: its place is the first one holding its score.
        rank = int(np.flatnonzero(scores[order] == scores[target])[0])
        for k in ks:
            hits[k] += rank < k
    return {f"recall_at_{k}": hits[k] / len(targets) for k in ks} | {
        "example_count": float(len(targets))}


def integer_data(seed, candidates=40, queries=25, dim=3, absent=0.2):
    """Small-integer embeddings: every score is exact in any summation order, ties abound."""
    rng = np.random.default_rng(seed)
    corpus = rng.integers(-2, 3, size=(candidates, dim)).astype(np.float64)
    query = rng.integers(-2, 3, size=(queries, dim)).astype(np.float64)
    target = rng.integers(0, candidates, size=queries)
    target[rng.random(queries) < absent] = -1
    return corpus, query, target


def recall(corpus, query, target, ks, max_scores, batch=None):
    accumulator = RecallAccumulator(corpus, ks, max_scores=max_scores)
    batch = batch or len(target)
    for start in range(0, len(target), batch):
        accumulator.add(query[start : start + batch], target[start : start + batch])
    return accumulator.result()


# Recall ------------------------------------------------------------------------------------
@pytest.mark.parametrize("max_scores", [1, 7, 40, 79, 119, 400, 4_000_000])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recall_matches_brute_force_with_ties_and_absent_targets(seed, max_scores):
    # Below the corpus size (40) a query is scored in candidate blocks; 40 and 79 score one
    # query at a time, 119 two and 400 ten (blocks that split a batch), 4M a whole batch.
    corpus, query, target = integer_data(seed)
    ks = (1, 3, 10, 39, 40, 100)
    expected = reference_recall(corpus, query, target, ks)
    assert recall(corpus, query, target, ks, max_scores) == expected
    assert recall(corpus, query, target, ks, max_scores, batch=4) == expected
    assert 0 < expected["recall_at_1"] < expected["recall_at_10"] < expected["recall_at_39"]


@pytest.mark.parametrize("max_scores", [5, 50, 1_000, 4_000_000])
def test_recall_matches_brute_force_on_continuous_float32_embeddings(max_scores):
    rng = np.random.default_rng(7)
    corpus = rng.normal(size=(200, 8)).astype(np.float32)
    query = rng.normal(size=(60, 8)).astype(np.float32)
    target = rng.integers(-1, 200, size=60)
    ks = (5, 10, 50, 100)
    expected = reference_recall(corpus.astype(np.float64), query.astype(np.float64), target, ks)
    assert recall(corpus, query, target, ks, max_scores, batch=17) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("candidates", "queries", "max_scores"),
    [(1_000, 400, 40_000), (200_000, 3, 10_000)],
    ids=["query-blocks", "candidate-blocks"],
)
def test_scores_held_at_once_stay_within_max_scores(candidates, queries, max_scores):
    rng = np.random.default_rng(5)
    corpus = rng.normal(size=(candidates, 2))
    query = rng.normal(size=(queries, 2))
    target = rng.integers(0, candidates, size=queries)
    accumulator = RecallAccumulator(corpus, max_scores=max_scores)
    tracemalloc.start()
    try:
        accumulator.add(query, target)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # One block of float64 scores plus its comparison temporaries; scoring the whole batch
    # (or the whole corpus per query) at once would take 3.2 MB and 1.6 MB.
    assert peak < 2 * max_scores * 8


def test_ties_count_in_the_targets_favour():
    # Candidates 0, 1 and 2 score the same for this query, 3 scores higher.
    corpus = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    accumulator = RecallAccumulator(corpus, ks=(1, 2))
    accumulator.add(np.array([[1.0, 0.0]] * 3), np.array([0, 1, 2]))
    assert accumulator.result() == {"recall_at_1": 0.0, "recall_at_2": 1.0, "example_count": 3.0}


def test_absent_targets_are_misses_that_count_as_examples():
    corpus = np.eye(3)
    accumulator = RecallAccumulator(corpus, ks=(1, 3))
    accumulator.add(np.eye(3), np.array([0, -1, 2]))
    accumulator.add(np.eye(3)[:1], np.array([-1]))
    assert accumulator.result() == {"recall_at_1": 0.5, "recall_at_3": 0.5, "example_count": 4.0}


def test_k_beyond_the_corpus_hits_every_target_in_the_corpus():
    rng = np.random.default_rng(3)
    corpus = rng.normal(size=(4, 2))
    accumulator = RecallAccumulator(corpus, ks=(1, 5, 100))
    # Each query points away from its target, which then ranks last.
    accumulator.add(-corpus, np.array([0, 1, 2, 3]))
    accumulator.add(corpus[:1], np.array([-1]))
    result = accumulator.result()
    assert result["recall_at_5"] == result["recall_at_100"] == 0.8
    assert result["recall_at_1"] < 0.8


def test_recall_keys_and_empty_batches():
    accumulator = RecallAccumulator(np.eye(2))
    accumulator.add(np.zeros((0, 2)), np.zeros(0, dtype=np.int64))
    assert accumulator.example_count == 0
    accumulator.add(np.eye(2), np.array([0, 1]))
    assert list(accumulator.result()) == [
        "recall_at_5", "recall_at_10", "recall_at_50", "recall_at_100", "example_count"]


def test_recall_without_examples_is_refused():
    with pytest.raises(ValueError, match="no examples"):
        RecallAccumulator(np.eye(2)).result()


@pytest.mark.parametrize(
    ("candidates", "ks", "max_scores", "match"),
    [
        (np.zeros(3), (1,), 10, "2-d"),
        (np.zeros((0, 3)), (1,), 10, "non-empty"),
        (np.array([["a", "b"]]), (1,), 10, "real numbers"),
        (np.array([[np.nan, 0.0]]), (1,), 10, "non-finite"),
        (np.eye(2), (), 10, "at least one k"),
        (np.eye(2), (0,), 10, "k must be an integer >= 1"),
        (np.eye(2), (2.5,), 10, "k must be an integer >= 1"),
        (np.eye(2), (5, 5), 10, "must not repeat"),
        (np.eye(2), (1,), 0, "max_scores"),
    ],
)
def test_recall_construction_errors(candidates, ks, max_scores, match):
    with pytest.raises(ValueError, match=match):
        RecallAccumulator(candidates, ks, max_scores=max_scores)


@pytest.mark.parametrize(
    ("queries", "targets", "match"),
    [
        (np.zeros((2, 3)), np.array([0, 1]), r"shape \(batch, 2\)"),
        (np.zeros(2), np.array([0]), r"shape \(batch, 2\)"),
        (np.zeros((2, 2)), np.array([0]), r"shape \(2,\)"),
        (np.zeros((2, 2)), np.array([[0], [1]]), r"shape \(2,\)"),
        (np.zeros((2, 2)), np.array([0.0, 1.0]), "integers"),
        (np.zeros((2, 2)), np.array([0, 3]), r"\[-1, 3\)"),
        (np.zeros((2, 2)), np.array([-2, 0]), r"\[-1, 3\)"),
        (np.array([[np.nan, 0.0], [0.0, 0.0]]), np.array([0, 1]), "non-finite"),
    ],
)
def test_recall_batch_errors(queries, targets, match):
    accumulator = RecallAccumulator(np.eye(3, 2))
    with pytest.raises(ValueError, match=match):
        accumulator.add(queries, targets)
    assert accumulator.example_count == 0


# Regression --------------------------------------------------------------------------------
def test_regression_metrics_on_hand_checked_numbers():
    accumulator = RegressionAccumulator()
    # Errors 1, -2, 0, 3: squared 1 + 4 + 0 + 9 = 14, absolute 1 + 2 + 0 + 3 = 6.
    accumulator.add(np.array([2.0, 1.0, 5.0, 7.0]), np.array([1.0, 3.0, 5.0, 4.0]))
    result = accumulator.result()
    assert result == {"rmse": pytest.approx(np.sqrt(14 / 4)), "mae": 1.5, "example_count": 4.0}
    assert result["rmse"] == pytest.approx(1.8708286933869707)


def test_regression_streaming_equals_one_batch_and_numpy():
    rng = np.random.default_rng(11)
    predictions = rng.normal(3.0, 1.0, size=1000).astype(np.float32)
    targets = rng.integers(1, 6, size=1000)
    whole = RegressionAccumulator()
    whole.add(predictions, targets)
    streamed = RegressionAccumulator()
    for chunk in np.array_split(np.arange(1000), 7):
        # Keras hands single-output predictions over as (batch, 1).
        streamed.add(predictions[chunk][:, None], targets[chunk])
    error = predictions.astype(np.float64) - targets
    expected = {"rmse": float(np.sqrt(np.mean(error**2))), "mae": float(np.mean(np.abs(error))),
                "example_count": 1000.0}
    assert whole.result() == pytest.approx(expected, rel=1e-12)
    assert streamed.result() == pytest.approx(whole.result(), rel=1e-12)


def test_regression_without_examples_is_refused():
    accumulator = RegressionAccumulator()
    accumulator.add(np.zeros(0), np.zeros(0))
    with pytest.raises(ValueError, match="no examples"):
        accumulator.result()


@pytest.mark.parametrize(
    ("predictions", "targets", "match"),
    [
        (np.zeros(3), np.zeros(2), "differ in length"),
        (np.zeros((3, 2)), np.zeros(3), r"predictions must have shape \(batch,\)"),
        (np.zeros(3), np.zeros((3, 3)), r"targets must have shape \(batch,\)"),
        (np.array([1.0, np.inf]), np.zeros(2), "non-finite"),
        (np.zeros(2), np.array(["a", "b"]), "real numbers"),
    ],
)
def test_regression_batch_errors(predictions, targets, match):
    accumulator = RegressionAccumulator()
    with pytest.raises(ValueError, match=match):
        accumulator.add(predictions, targets)
    assert accumulator.example_count == 0
