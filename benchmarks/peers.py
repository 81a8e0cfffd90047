"""Peers of the recommender models in the benchmarks, tuned on the train split only, and the
figures that put them side by side: for retrieval (`recommender_recall.py`) the most-popular
list and implicit's ALS; for rating prediction (`recommender_rmse.py`) the train mean and a
biased matrix factorisation.

Buyers and products are integer indices (the planted order). A scorer maps a batch of buyer
indices to their (batch, products) scores; `recall_at_k` ranks by them exactly as the
Evaluator and the oracle do. Everything here is numpy / scipy except `fit_als`, which imports
`implicit` (the `test` extra) when it is called.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass
from typing import Callable, Generic, Sequence, TypeVar

import numpy as np

Scorer = Callable[[np.ndarray], np.ndarray]
P = TypeVar("P")

# Scores held at once per batch, as the oracle's ORACLE_BUDGET.
SCORE_BUDGET = 2_000_000
# Share of each buyer's train rows held out to choose ALS's hyper-parameters.
HOLDOUT_SHARE = 0.2


def recall_at_k(score: Scorer, buyers: np.ndarray, products: np.ndarray, k: int,
                *, batch_size: int | None = None) -> float:
    """Share of (buyer, product) pairs whose product is in the buyer's top k by `score`.

    Nothing is excluded (already seen products count), as in the Evaluator's recall@k and
    `synthetic.oracle_recall_at_k`. A pair with fewer than k strictly better products is a
    hit; products tied with its product share the places left, so a tie across the k-th place
    counts as the share that fits (the expected recall under a random order of ties, as the
    Evaluator's most-popular baseline counts it). Without ties, the case of continuous scores
    (model, oracle, ALS), this is exactly their `rank < k`.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    buyers, products = np.asarray(buyers), np.asarray(products)
    if buyers.shape != products.shape or buyers.ndim != 1 or len(buyers) == 0:
        raise ValueError("buyers and products must be 1-d, non-empty and of equal length")
    hits = 0.0
    step = batch_size or max(1, SCORE_BUDGET // np.shape(score(buyers[:1]))[1])
    for start in range(0, len(buyers), step):
        scores = np.asarray(score(buyers[start:start + step]))
        target = scores[np.arange(len(scores)), products[start:start + step]][:, None]
        above = np.count_nonzero(scores > target, axis=1)
        tied = np.count_nonzero(scores == target, axis=1)
        hits += float(np.clip((k - above) / tied, 0.0, 1.0).sum())
    return hits / len(buyers)


def most_popular_scorer(train_products: np.ndarray, num_products: int) -> Scorer:
    """Every buyer gets the same list: products by their number of train rows."""
    counts = np.bincount(train_products, minlength=num_products).astype(np.float64)
    return lambda buyers: np.broadcast_to(counts, (len(buyers), num_products))


def gap_closed(recall: float, popularity: float, oracle: float) -> float:
    """(recall - popularity) / (oracle - popularity): 0 at the most-popular list, 1 at the
    oracle; NaN when the two coincide."""
    span = oracle - popularity
    return (recall - popularity) / span if span else math.nan


def interaction_matrix(buyers: np.ndarray, products: np.ndarray, num_buyers: int,
                       num_products: int):
    """Buyers x products CSR matrix of row counts (float32), the input ALS factorises."""
    from scipy.sparse import csr_matrix

    ones = np.ones(len(buyers), dtype=np.float32)
    matrix = csr_matrix((ones, (buyers, products)), shape=(num_buyers, num_products))
    matrix.sum_duplicates()
    return matrix


def holdout_mask(buyers: np.ndarray, share: float, seed: int) -> np.ndarray:
    """True for the rows held out for validation: about `share` of each buyer's rows, drawn
    at random, never all of them (a buyer with one row keeps it for fitting)."""
    if not 0.0 < share < 1.0:
        raise ValueError(f"share must lie in (0, 1), got {share}")
    buyers = np.asarray(buyers)
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(buyers)), buyers))  # by buyer, random within
    sorted_buyers = buyers[order]
    starts = np.searchsorted(sorted_buyers, sorted_buyers, side="left")
    position = np.arange(len(buyers)) - starts
    counts = np.bincount(buyers)[sorted_buyers]
    held = np.minimum(np.floor(share * counts + 0.5), counts - 1)
    mask = np.empty(len(buyers), dtype=bool)
    mask[order] = position < held
    return mask


@dataclass(frozen=True)
class AlsParams:
    """Hyper-parameters of implicit's AlternatingLeastSquares."""

    factors: int
    regularization: float
    iterations: int
    alpha: float

    def __str__(self) -> str:
        return (f"factors={self.factors} regularization={self.regularization:g} "
                f"iterations={self.iterations} alpha={self.alpha:g}")


# The default grid (160 points). On 20k rows of seed 7 (about 3 train rows per buyer) the
# validation optimum was factors=8 regularization=100 alpha=40, and under Zipf 1.2
# factors=32 regularization=100 alpha=10; a wider grid (regularization to 1000, alpha to
# 100, factors down to 4) moved ALS's eval recall@100 by less than 0.01.
ALS_FACTORS = (8, 16, 32, 64, 128)
ALS_REGULARIZATION = (0.1, 1.0, 10.0, 100.0)
ALS_ITERATIONS = (15, 30)
ALS_ALPHA = (0.3, 1.0, 10.0, 40.0)


def als_grid(factors: Sequence[int] = ALS_FACTORS,
             regularizations: Sequence[float] = ALS_REGULARIZATION,
             iterations: Sequence[int] = ALS_ITERATIONS,
             alphas: Sequence[float] = ALS_ALPHA) -> list[AlsParams]:
    """Every combination, in a fixed order."""
    return [AlsParams(f, r, i, a)
            for f, r, i, a in itertools.product(factors, regularizations, iterations, alphas)]


def grid_edges(best: AlsParams, grid: Sequence[AlsParams]) -> list[str]:
    """The hyper-parameters whose chosen value is the smallest or largest of three or more
    tried: there the optimum may lie outside the grid (of two values, one is always an end)."""
    edges = []
    for name in ("factors", "regularization", "iterations", "alpha"):
        values = {getattr(params, name) for params in grid}
        value = getattr(best, name)
        if len(values) > 2 and value in (min(values), max(values)):
            edges.append(f"{name}={value:g} ({'lowest' if value == min(values) else 'highest'})")
    return edges


@dataclass(frozen=True)
class Selection(Generic[P]):
    """Outcome of a grid search: the best candidate, its score and every candidate's."""

    best: P
    best_score: float
    scores: list[tuple[P, float]]


def select_best(grid: Sequence[P], evaluate: Callable[[P], float]) -> Selection[P]:
    """Evaluate every candidate, keep the highest score; the earliest wins a tie."""
    if not grid:
        raise ValueError("empty grid")
    scores = [(candidate, float(evaluate(candidate))) for candidate in grid]
    best, best_score = scores[0]
    for candidate, value in scores[1:]:
        if value > best_score:
            best, best_score = candidate, value
    return Selection(best=best, best_score=best_score, scores=scores)


@dataclass(frozen=True)
class AlsModel:
    """A fitted ALS model: buyer and product factors, and how long the fit took."""

    user_factors: np.ndarray
    item_factors: np.ndarray
    params: AlsParams
    fit_seconds: float

    def score(self, buyers: np.ndarray) -> np.ndarray:
        """(len(buyers), products) scores: buyer factor . product factor."""
        return self.user_factors[buyers] @ self.item_factors.T


def fit_als(matrix, params: AlsParams, *, seed: int, threads: int = 2) -> AlsModel:
    """implicit's AlternatingLeastSquares on the CPU, fitted to a buyers x products matrix."""
    from implicit.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    started = time.perf_counter()
    # implicit parallelises over users itself; a multi-threaded BLAS under it oversubscribes
    # the cores (the constructor warns about exactly this).
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=params.factors, regularization=params.regularization, alpha=params.alpha,
            iterations=params.iterations, random_state=seed, num_threads=threads,
            use_gpu=False,
        )
        model.fit(matrix, show_progress=False)
    return AlsModel(np.asarray(model.user_factors), np.asarray(model.item_factors), params,
                    time.perf_counter() - started)


@dataclass(frozen=True)
class AlsTuning:
    """Tuned ALS: the grid search on the held-out train rows and the refit on all of them."""

    selection: Selection[AlsParams]
    model: AlsModel
    validation_rows: int
    tune_seconds: float


def tune_als(train_buyers: np.ndarray, train_products: np.ndarray, num_buyers: int,
             num_products: int, *, k: int, seed: int, grid: Sequence[AlsParams] | None = None,
             holdout_share: float = HOLDOUT_SHARE, threads: int = 2) -> AlsTuning:
    """Choose ALS's hyper-parameters by recall@k on held-out train rows, refit on all of them.

    The eval split is never seen: part of each buyer's train rows is held out, every grid
    point is fitted on the rest and scored on it with `recall_at_k`, and the best is fitted
    again on the whole train split.
    """
    started = time.perf_counter()
    held = holdout_mask(train_buyers, holdout_share, seed)
    fit_matrix = interaction_matrix(train_buyers[~held], train_products[~held], num_buyers,
                                    num_products)
    val_buyers, val_products = train_buyers[held], train_products[held]

    def validation_recall(params: AlsParams) -> float:
        model = fit_als(fit_matrix, params, seed=seed, threads=threads)
        return recall_at_k(model.score, val_buyers, val_products, k)

    selection = select_best(grid if grid is not None else als_grid(), validation_recall)
    tune_seconds = time.perf_counter() - started
    full = interaction_matrix(train_buyers, train_products, num_buyers, num_products)
    model = fit_als(full, selection.best, seed=seed, threads=threads)
    return AlsTuning(selection, model, int(held.sum()), tune_seconds)


def report(recalls: dict[str, float], *, oracle: str, popularity: str, k: int) -> str:
    """The side-by-side table: scorer, recall@k, ratio to the oracle, gap closed."""
    top, base = recalls[oracle], recalls[popularity]
    width = max(len(name) for name in recalls) + 2
    lines = [f"{'scorer':<{width}}{f'recall@{k}':>10}{'/ oracle':>10}{'gap closed':>12}"]
    for name, value in recalls.items():
        lines.append(f"{name:<{width}}{value:>10.4f}{value / top:>10.3f}"
                     f"{gap_closed(value, base, top):>12.3f}")
    return "\n".join(lines)


# --- Rating prediction: the train mean and a biased matrix factorisation ---------------------

def rmse(predicted: np.ndarray, ratings: np.ndarray) -> float:
    """Root mean squared error."""
    return float(np.sqrt(np.mean((np.asarray(predicted) - np.asarray(ratings)) ** 2)))


def rmse_gap_closed(value: float, floor: float, oracle: float) -> float:
    """(floor - value) / (floor - oracle) for an error: 0 at the train mean, 1 at the oracle."""
    span = floor - oracle
    return (floor - value) / span if span else math.nan


@dataclass(frozen=True)
class MfParams:
    """Hyper-parameters of the biased matrix factorisation (0 factors: biases only)."""

    factors: int
    regularization: float
    iterations: int

    def __str__(self) -> str:
        return (f"factors={self.factors} regularization={self.regularization:g} "
                f"iterations={self.iterations}")


MF_FACTORS = (0, 4, 8, 16)
MF_REGULARIZATION = (1.0, 3.0, 10.0, 30.0, 100.0)
MF_ITERATIONS = (10,)


@dataclass(frozen=True)
class BiasedMf:
    """rating ≈ mean + buyer bias + product bias + buyer factors · product factors."""

    mean: float
    buyer_bias: np.ndarray
    product_bias: np.ndarray
    buyer_factors: np.ndarray
    product_factors: np.ndarray
    params: MfParams

    def predict(self, buyers: np.ndarray, products: np.ndarray) -> np.ndarray:
        return (self.mean + self.buyer_bias[buyers] + self.product_bias[products]
                + np.einsum("nd,nd->n", self.buyer_factors[buyers],
                            self.product_factors[products]))


def _ridge_rows(groups: np.ndarray, count: int, design: np.ndarray, target: np.ndarray,
                regularization: float) -> np.ndarray:
    """For each group g < count: argmin_w |design[g rows] w - target[g rows]|² + reg |w|²
    (zeros for a group without rows), all groups in one batched solve."""
    width = design.shape[1]
    gram = np.empty((count, width, width))
    for j in range(width):
        for k in range(j, width):
            gram[:, j, k] = gram[:, k, j] = np.bincount(
                groups, weights=design[:, j] * design[:, k], minlength=count)
    rhs = np.column_stack([np.bincount(groups, weights=design[:, j] * target, minlength=count)
                           for j in range(width)])
    gram += regularization * np.eye(width)
    from threadpoolctl import threadpool_limits

    # Thousands of tiny systems: a multi-threaded BLAS spends its time synchronising threads
    # (17 s per call for 5,000 systems of 17 unknowns, seen on 2 busy cores; single-threaded,
    # a whole 10-iteration fit of 200k rows with 16 factors took 7 s).
    with threadpool_limits(1, "blas"):
        return np.linalg.solve(gram, rhs[:, :, None])[:, :, 0]


def fit_biased_mf(buyers: np.ndarray, products: np.ndarray, ratings: np.ndarray,
                  num_buyers: int, num_products: int, params: MfParams, *,
                  seed: int) -> BiasedMf:
    """Alternating ridge regressions: each buyer's [factors, bias] against its products'
    [factors, 1], then each product's against its buyers', on ratings less the mean and the
    other side's bias. Buyers or products without rows keep zeros (they get the mean)."""
    ratings = np.asarray(ratings, dtype=np.float64)
    mean = float(ratings.mean())
    rng = np.random.default_rng(seed)
    f = params.factors
    buyer = np.zeros((num_buyers, f + 1))
    product = np.column_stack([rng.normal(0.0, 0.1, size=(num_products, f)),
                               np.zeros(num_products)])
    ones = np.ones((len(ratings), 1))
    for _ in range(params.iterations):
        # Buyer side: unknowns [p_u, b_u]; product side fixed.
        design = np.hstack([product[products, :f], ones])
        buyer = _ridge_rows(buyers, num_buyers, design,
                            ratings - mean - product[products, f], params.regularization)
        design = np.hstack([buyer[buyers, :f], ones])
        product = _ridge_rows(products, num_products, design,
                              ratings - mean - buyer[buyers, f], params.regularization)
    return BiasedMf(mean, buyer[:, f], product[:, f], buyer[:, :f], product[:, :f], params)


@dataclass(frozen=True)
class MfTuning:
    """Tuned biased MF: the grid search on held-out train rows and the refit on all of them."""

    selection: Selection[MfParams]
    model: BiasedMf
    validation_rows: int
    tune_seconds: float


def tune_biased_mf(train_buyers: np.ndarray, train_products: np.ndarray,
                   train_ratings: np.ndarray, num_buyers: int, num_products: int, *,
                   seed: int, grid: Sequence[MfParams] | None = None,
                   holdout_share: float = HOLDOUT_SHARE) -> MfTuning:
    """Choose the hyper-parameters by RMSE on held-out train rows, refit on the train split
    (the eval split is never seen), as `tune_als` does for recall."""
    started = time.perf_counter()
    grid = grid if grid is not None else [
        MfParams(f, r, i) for f, r, i in itertools.product(MF_FACTORS, MF_REGULARIZATION,
                                                           MF_ITERATIONS)]
    held = holdout_mask(train_buyers, holdout_share, seed)

    def negative_rmse(params: MfParams) -> float:
        model = fit_biased_mf(train_buyers[~held], train_products[~held], train_ratings[~held],
                              num_buyers, num_products, params, seed=seed)
        return -rmse(model.predict(train_buyers[held], train_products[held]),
                     train_ratings[held])

    selection = select_best(grid, negative_rmse)
    tune_seconds = time.perf_counter() - started
    model = fit_biased_mf(train_buyers, train_products, train_ratings, num_buyers,
                          num_products, selection.best, seed=seed)
    return MfTuning(selection, model, int(held.sum()), tune_seconds)


def rmse_report(errors: dict[str, float], *, oracle: str, floor: str) -> str:
    """The side-by-side table: predictor, RMSE, gap closed (train mean 0, oracle 1)."""
    width = max(len(name) for name in errors) + 2
    lines = [f"{'predictor':<{width}}{'rmse':>10}{'gap closed':>12}"]
    for name, value in errors.items():
        closed = rmse_gap_closed(value, errors[floor], errors[oracle])
        lines.append(f"{name:<{width}}{value:>10.4f}{closed:>12.3f}")
    return "\n".join(lines)
