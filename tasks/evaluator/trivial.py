"""Trivial predictors: what a model that learned nothing scores, for the trivial-baseline rule.

Pure numpy, no TensorFlow. Each metric that has one gets the trivial predictor below; what it
learns comes from the train split in one streaming pass, and it is scored on the same eval
rows as the model. A metric not listed has no trivial predictor and so no rule.

| metric | trivial predictor |
|---|---|
| BinaryAccuracy, binary_accuracy, Accuracy | the train split's majority class |
| AUC | a constant score: 0.5 |
| RootMeanSquaredError, MeanSquaredError, MeanAbsoluteError, rmse, mae | the train mean |
| recall_at_5/10/50/100 | the items most often the target on the train split (ties share places) |
"""

from __future__ import annotations

from collections import Counter
from enum import Enum
from typing import NamedTuple, Sequence

import numpy as np

from tasks.evaluator.metrics import single_column


class TrivialPredictor(str, Enum):
    """How a trivial predictor predicts (its value is the name a rule's message shows)."""

    MAJORITY_CLASS = "majority-class predictor"
    CONSTANT_SCORE = "constant-score predictor"
    TRAIN_MEAN = "train-mean predictor"
    MOST_POPULAR = "most-popular-items predictor"


class _Entry(NamedTuple):
    predictor: TrivialPredictor
    score: str  # the name of its value among the trivial scores
    perfect: float  # a perfect model's value


_MAJORITY = TrivialPredictor.MAJORITY_CLASS
_MEAN = TrivialPredictor.TRAIN_MEAN
_METRICS = {
    "BinaryAccuracy": _Entry(_MAJORITY, "accuracy", 1.0),
    "binary_accuracy": _Entry(_MAJORITY, "accuracy", 1.0),
    "Accuracy": _Entry(_MAJORITY, "accuracy", 1.0),
    "AUC": _Entry(TrivialPredictor.CONSTANT_SCORE, "auc", 1.0),
    "RootMeanSquaredError": _Entry(_MEAN, "rmse", 0.0),
    "rmse": _Entry(_MEAN, "rmse", 0.0),
    "MeanSquaredError": _Entry(_MEAN, "mse", 0.0),
    "MeanAbsoluteError": _Entry(_MEAN, "mae", 0.0),
    "mae": _Entry(_MEAN, "mae", 0.0),
}
RECALL_PREFIX = "recall_at_"

# TFMA names a configured Keras metric by its default instance name.
TFMA_KEYS = {
    "BinaryAccuracy": "binary_accuracy",
    "Accuracy": "accuracy",
    "AUC": "auc",
    "RootMeanSquaredError": "root_mean_squared_error",
    "MeanSquaredError": "mean_squared_error",
    "MeanAbsoluteError": "mean_absolute_error",
}
AUC_OF_A_CONSTANT = 0.5
# Distinct label values counted for the majority class; beyond this it is no class label.
MAX_CLASSES = 10_000


def _entry(metric: str) -> _Entry | None:
    if metric.startswith(RECALL_PREFIX) and metric[len(RECALL_PREFIX):].isdigit():
        return _Entry(TrivialPredictor.MOST_POPULAR, metric, 1.0)
    return _METRICS.get(metric)


def predictor_for(metric: str) -> TrivialPredictor | None:
    """The trivial predictor of a metric, or None when it has none (then it gets no rule)."""
    entry = _entry(metric)
    return entry.predictor if entry else None


def perfect_score(metric: str) -> float:
    """A perfect model's value: 0 for errors, 1 for accuracy, AUC and recall."""
    entry = _entry(metric)
    if entry is None:
        raise ValueError(f"{metric} has no trivial predictor")
    return entry.perfect


def by_metric(scores: dict[str, float], metrics: Sequence[str]) -> dict[str, float]:
    """The trivial scores (`ConstantScores`, `PopularityRecall` results) under the name of
    each metric that has one (AUC: a constant's 0.5 on any rows); metrics without a trivial
    predictor or score are left out."""
    out: dict[str, float] = {}
    for metric in metrics:
        entry = _entry(metric)
        if entry is None:
            continue
        if entry.predictor is TrivialPredictor.CONSTANT_SCORE:
            out[metric] = AUC_OF_A_CONSTANT
        elif entry.score in scores:
            out[metric] = scores[entry.score]
    return out


def tfma_key(metric: str) -> str:
    """The name TFMA gives a configured metric class in its results."""
    return TFMA_KEYS.get(metric, metric)


class LabelTally:
    """One pass over the train split's labels: the class counts and the mean.

    Class counts stop (and `majority_class` is None) past `max_classes` distinct values: such
    a label is no class label, so accuracy has no majority-class predictor (0: the mean only).
    """

    def __init__(self, *, max_classes: int = MAX_CLASSES) -> None:
        self._classes: Counter | None = Counter() if max_classes > 0 else None
        self._max_classes = max_classes
        self._sum = 0.0
        self._count = 0
        self._numeric = True

    def add(self, labels: np.ndarray) -> None:
        """Count one batch of labels, one per row."""
        array = single_column(labels, "labels")
        if array.size == 0:
            return
        if self._classes is not None:
            values, counts = np.unique(array, return_counts=True)
            self._classes.update(dict(zip(values.tolist(), counts.tolist())))
            if len(self._classes) > self._max_classes:
                self._classes = None
        if np.issubdtype(array.dtype, np.number) and not np.iscomplexobj(array):
            numbers = array.astype(np.float64)
            if not np.all(np.isfinite(numbers)):
                raise ValueError("labels hold non-finite values (NaN or inf)")
            self._sum += float(numbers.sum())
        else:
            self._numeric = False  # e.g. string classes: a majority, but no mean
        self._count += int(array.size)

    @property
    def count(self) -> int:
        """Labels counted."""
        return self._count

    @property
    def majority_class(self) -> object | None:
        """The most frequent label (ties: the smallest value), None without classes or rows."""
        if not self._classes:
            return None
        best = max(self._classes.values())
        return min(value for value, count in self._classes.items() if count == best)

    @property
    def mean(self) -> float | None:
        """The mean label, None without rows or for labels that are not numbers."""
        return self._sum / self._count if self._count and self._numeric else None


class ConstantScores:
    """A constant predictor on the eval rows: accuracy of the majority class, errors of the
    mean (rmse, mse, mae), from running sums."""

    def __init__(self, majority_class: object | None, mean: float | None) -> None:
        self._majority = majority_class
        self._mean = mean
        self._correct = 0
        self._squared = 0.0
        self._absolute = 0.0
        self._count = 0

    def add(self, labels: np.ndarray) -> None:
        """Score one batch of eval labels, one per row."""
        array = single_column(labels, "labels")
        if self._majority is not None:
            self._correct += int(np.count_nonzero(array == self._majority))
        if self._mean is not None and array.size:
            error = array.astype(np.float64) - self._mean
            self._squared += float(np.dot(error, error))
            self._absolute += float(np.abs(error).sum())
        self._count += int(array.size)

    def result(self) -> dict[str, float]:
        """`accuracy` (with a majority class), `rmse`, `mse`, `mae` (with a mean); empty
        when no rows were added."""
        if self._count == 0:
            return {}
        out: dict[str, float] = {}
        if self._majority is not None:
            out["accuracy"] = self._correct / self._count
        if self._mean is not None:
            out["mse"] = self._squared / self._count
            out["rmse"] = float(np.sqrt(out["mse"]))
            out["mae"] = self._absolute / self._count
        return out


def popularity_places(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per candidate: how many candidates are strictly more popular, and how many share its
    count (itself included): its places in the most-popular list are above ... above+tied-1."""
    counts = np.asarray(counts)
    if counts.ndim != 1:
        raise ValueError(f"counts must be 1-d, got shape {counts.shape}")
    ordered = np.sort(counts)
    first = np.searchsorted(ordered, counts, side="left")
    after = np.searchsorted(ordered, counts, side="right")
    return (len(counts) - after).astype(np.int64), (after - first).astype(np.int64)


class PopularityRecall:
    """Recall@k of the most-popular list, for eval rows given as corpus indices (-1: the
    target is not in the corpus, a miss at every k, as for the model).

    Equally popular candidates share their places: a target tied with g others across the
    k-th place counts as the share of them that fits, the expected recall of the list under
    a random order of ties. So the baseline depends neither on corpus order nor on luck.
    """

    def __init__(self, counts: np.ndarray, ks: Sequence[int]) -> None:
        self._above, self._tied = popularity_places(counts)
        self._ks = np.array(tuple(ks), dtype=np.float64)
        self._hits = np.zeros(len(self._ks), dtype=np.float64)
        self._count = 0

    def add(self, target_index: np.ndarray) -> None:
        """Score one batch of eval rows."""
        targets = np.asarray(target_index, dtype=np.int64)
        if targets.ndim != 1:
            raise ValueError(f"target_index must be 1-d, got shape {targets.shape}")
        if targets.size and (targets.min() < -1 or targets.max() >= len(self._above)):
            raise ValueError(f"target_index must lie in [-1, {len(self._above)})")
        present = targets[targets >= 0]
        above = self._above[present][:, None]
        tied = self._tied[present][:, None]
        share = np.clip((self._ks[None, :] - above) / tied, 0.0, 1.0)
        self._hits += share.sum(axis=0)
        self._count += int(targets.size)

    def result(self) -> dict[str, float]:
        """`recall_at_{k}` for every k; empty when no rows were added."""
        if self._count == 0:
            return {}
        return {f"{RECALL_PREFIX}{int(k)}": float(hits) / self._count
                for k, hits in zip(self._ks, self._hits)}


def count_targets(counts: np.ndarray, target_index: np.ndarray) -> None:
    """Add one batch of train targets (corpus indices, -1 for none) to `counts` in place."""
    targets = np.asarray(target_index, dtype=np.int64)
    targets = targets[targets >= 0]
    counts += np.bincount(targets, minlength=len(counts))[: len(counts)]
