"""Streaming evaluation metrics for recommender models, in plain numpy (no TensorFlow).

`RecallAccumulator` measures retrieval recall@k by exact ranking over the whole candidate
corpus, the same way `synthetic/oracle.py` measures the planted ceiling, so a model's recall
and the oracle's are directly comparable. `RegressionAccumulator` measures RMSE and MAE of a
rating model. Both take batches as they come and hold only running sums between them.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

DEFAULT_KS = (5, 10, 50, 100)
# Score floats held at once (float32: 16 MiB, plus smaller comparison temporaries).
DEFAULT_MAX_SCORES = 4_000_000


def _require_finite(array: np.ndarray, what: str) -> None:
    # A NaN score compares false with everything, so the target would rank first: a silent hit.
    bad = array.size - int(np.count_nonzero(np.isfinite(array)))
    if bad:
        raise ValueError(f"{what} has {bad} non-finite value(s) (NaN or inf)")


class RecallAccumulator:
    """Recall@k of query embeddings against a fixed candidate corpus, batch by batch.

    A query's score for each candidate is ``query @ candidate``. Its rank is the number of
    candidates scoring strictly higher than its true candidate, so ties count in the target's
    favour; it is a hit at k when ``rank < k``. A target index of -1 means the true candidate is
    not in the corpus: the example counts, as a miss at every k. At most ``max_scores`` score
    floats are held at once: a batch is scored a block of queries at a time, and when the corpus
    alone is larger than that, a block of candidates at a time.
    """

    def __init__(
        self,
        candidate_embeddings: np.ndarray,
        ks: Sequence[int] = DEFAULT_KS,
        *,
        max_scores: int = DEFAULT_MAX_SCORES,
    ) -> None:
        candidates = np.asarray(candidate_embeddings)
        if candidates.ndim != 2 or candidates.shape[0] == 0 or candidates.shape[1] == 0:
            raise ValueError(
                f"candidate_embeddings must be a non-empty 2-d array (candidates, dim), got "
                f"shape {candidates.shape}"
            )
        if not np.issubdtype(candidates.dtype, np.number) or np.iscomplexobj(candidates):
            raise ValueError(f"candidate_embeddings must be real numbers, got {candidates.dtype}")
        _require_finite(candidates, "candidate_embeddings")
        ks = tuple(ks)
        if not ks:
            raise ValueError("ks must name at least one k")
        for k in ks:
            if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
                raise ValueError(f"every k must be an integer >= 1, got {k!r}")
        if len(set(ks)) != len(ks):
            raise ValueError(f"ks must not repeat, got {ks}")
        if isinstance(max_scores, bool) or not isinstance(max_scores, (int, np.integer)) \
                or max_scores < 1:
            raise ValueError(f"max_scores must be an integer >= 1, got {max_scores!r}")
        # float32 embeddings stay float32 (half the memory); anything else is scored in float64.
        self._dtype = np.result_type(candidates.dtype, np.float32)
        self._candidates = candidates.astype(self._dtype, copy=False)
        self._ks = tuple(int(k) for k in ks)
        self._k_array = np.array(self._ks, dtype=np.int64)
        self._max_scores = int(max_scores)
        self._hits = np.zeros(len(self._ks), dtype=np.int64)
        self._count = 0

    @property
    def ks(self) -> tuple[int, ...]:
        """The cut-offs measured, in the order given."""
        return self._ks

    @property
    def example_count(self) -> int:
        """Examples added so far, misses by absent targets included."""
        return self._count

    def add(self, query_embeddings: np.ndarray, target_index: np.ndarray) -> None:
        """Rank one batch: query ``i``'s true candidate is row ``target_index[i]`` (or -1)."""
        queries = np.asarray(query_embeddings)
        targets = np.asarray(target_index)
        num_candidates, dim = self._candidates.shape
        if queries.ndim != 2 or queries.shape[1] != dim:
            raise ValueError(
                f"query_embeddings must have shape (batch, {dim}), got {queries.shape}"
            )
        if not np.issubdtype(queries.dtype, np.number) or np.iscomplexobj(queries):
            raise ValueError(f"query_embeddings must be real numbers, got {queries.dtype}")
        if targets.ndim != 1 or targets.shape[0] != queries.shape[0]:
            raise ValueError(
                f"target_index must have shape ({queries.shape[0]},) to match the queries, got "
                f"{targets.shape}"
            )
        if targets.size and not np.issubdtype(targets.dtype, np.integer):
            raise ValueError(f"target_index must be integers, got {targets.dtype}")
        if targets.size and (targets.min() < -1 or targets.max() >= num_candidates):
            raise ValueError(
                f"target_index must lie in [-1, {num_candidates}), got values from "
                f"{targets.min()} to {targets.max()}"
            )
        _require_finite(queries, "query_embeddings")
        in_corpus = targets >= 0
        queries = queries[in_corpus].astype(self._dtype, copy=False)
        targets = targets[in_corpus].astype(np.int64, copy=False)
        if num_candidates <= self._max_scores:
            ranks = self._ranks_by_query_block(queries, targets)
        else:
            ranks = self._ranks_by_candidate_block(queries, targets)
        self._hits += np.count_nonzero(ranks[:, None] < self._k_array[None, :], axis=0)
        self._count += int(in_corpus.shape[0])

    def _ranks_by_query_block(self, queries: np.ndarray, targets: np.ndarray) -> np.ndarray:
        num_candidates = self._candidates.shape[0]
        step = max(1, self._max_scores // num_candidates)
        ranks = np.empty(len(targets), dtype=np.int64)
        for start in range(0, len(targets), step):
            stop = start + step
            scores = queries[start:stop] @ self._candidates.T
            # The target's score is read from the same matrix, so it never outranks itself.
            target = scores[np.arange(scores.shape[0]), targets[start:stop]]
            ranks[start:stop] = np.count_nonzero(scores > target[:, None], axis=1)
            del scores, target  # else the next block is computed while this one is still held
        return ranks

    def _ranks_by_candidate_block(self, queries: np.ndarray, targets: np.ndarray) -> np.ndarray:
        # The corpus alone exceeds the budget: one query at a time, its target's block first.
        num_candidates = self._candidates.shape[0]
        step = self._max_scores
        ranks = np.zeros(len(targets), dtype=np.int64)
        for row, (query, target) in enumerate(zip(queries, targets)):
            home = (int(target) // step) * step
            scores = self._candidates[home : home + step] @ query
            target_score = scores[int(target) - home]
            ranks[row] = np.count_nonzero(scores > target_score)
            del scores
            for start in range(0, num_candidates, step):
                if start != home:
                    scores = self._candidates[start : start + step] @ query
                    ranks[row] += np.count_nonzero(scores > target_score)
                    del scores
        return ranks

    def result(self) -> dict[str, float]:
        """``recall_at_{k}`` for every k, and ``example_count``."""
        if self._count == 0:
            raise ValueError("no examples were added: recall is undefined")
        metrics = {f"recall_at_{k}": float(hits) / self._count
                   for k, hits in zip(self._ks, self._hits)}
        metrics["example_count"] = float(self._count)
        return metrics


def single_column(values: np.ndarray, what: str) -> np.ndarray:
    """`values` as a 1-D array: (batch,) as it is, (batch, 1) flattened; ValueError otherwise."""
    array = np.asarray(values)
    # (batch, 1) is how Keras shapes a single output; anything wider is a caller's bug.
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"{what} must have shape (batch,) or (batch, 1), got {array.shape}")
    return array


class RegressionAccumulator:
    """RMSE and MAE of predictions against targets, from float64 running sums."""

    def __init__(self) -> None:
        self._squared_error = 0.0
        self._absolute_error = 0.0
        self._count = 0

    @property
    def example_count(self) -> int:
        """Examples added so far."""
        return self._count

    @staticmethod
    def _column(values: np.ndarray, what: str) -> np.ndarray:
        array = single_column(values, what)
        if array.size and (not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array)):
            raise ValueError(f"{what} must be real numbers, got {array.dtype}")
        array = array.astype(np.float64, copy=False)
        _require_finite(array, what)
        return array

    def add(self, predictions: np.ndarray, targets: np.ndarray) -> None:
        """Add one batch of predictions and their true values."""
        predicted = self._column(predictions, "predictions")
        actual = self._column(targets, "targets")
        if predicted.shape != actual.shape:
            raise ValueError(
                f"predictions and targets differ in length: {predicted.shape[0]} vs "
                f"{actual.shape[0]}"
            )
        error = predicted - actual
        self._squared_error += float(np.dot(error, error))
        self._absolute_error += float(np.abs(error).sum())
        self._count += int(error.shape[0])

    def result(self) -> dict[str, float]:
        """``rmse``, ``mae`` and ``example_count``."""
        if self._count == 0:
            raise ValueError("no examples were added: rmse and mae are undefined")
        return {
            "rmse": float(np.sqrt(self._squared_error / self._count)),
            "mae": self._absolute_error / self._count,
            "example_count": float(self._count),
        }
