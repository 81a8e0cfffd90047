"""Oracle metrics: how well the planted ground truth itself ranks held-out interactions.

Products are drawn from ``softmax(true affinity / temperature)``, so ranking by true affinity
is the Bayes-optimal ranking for a buyer's next interaction. The oracle recall@K is therefore
the ceiling a retrieval model's recall@K (measured the same way, without excluding already
seen products) can reach on this data, and ``k / products`` is the floor of random guessing.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from synthetic.planted import PlantedFactors

# Affinity floats held at once per batch (float64: 16 MiB, plus a same-sized comparison mask).
ORACLE_BUDGET = 2_000_000


def _batch_size(planted: PlantedFactors, batch_size: int | None) -> int:
    if batch_size is not None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        return batch_size
    return max(1, ORACLE_BUDGET // planted.num_products)


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")


def _pair_index(
    planted: PlantedFactors,
    buyer_ids: Sequence[str] | np.ndarray,
    product_ids: Sequence[str] | np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The planted indices of (buyer, product) pairs; both 1-d and of equal length."""
    buyer_index = planted.buyer_index(buyer_ids)
    product_index = planted.product_index(product_ids)
    if buyer_index.shape != product_index.shape or buyer_index.ndim != 1:
        raise ValueError(
            f"buyer_ids and product_ids must be 1-d and of equal length, got "
            f"{buyer_index.shape} and {product_index.shape}"
        )
    return buyer_index, product_index


def oracle_recall_at_k(
    planted: PlantedFactors,
    buyer_ids: Sequence[str] | np.ndarray,
    product_ids: Sequence[str] | np.ndarray,
    k: int,
    *,
    batch_size: int | None = None,
) -> float:
    """Share of (buyer, product) pairs whose product is in the buyer's top-k by true affinity.

    ``buyer_ids[i]`` and ``product_ids[i]`` form pair ``i`` (e.g. the eval split's rows).
    Ties count in the product's favour (rank = number of strictly better products), which
    with continuous factors happens with probability zero. Memory is bounded by
    ``batch_size x products`` floats; by default about ``ORACLE_BUDGET``.
    """
    _check_k(k)
    buyer_index, product_index = _pair_index(planted, buyer_ids, product_ids)
    if len(buyer_index) == 0:
        raise ValueError("no (buyer, product) pairs to evaluate")
    step = _batch_size(planted, batch_size)
    hits = 0
    for start in range(0, len(buyer_index), step):
        buyers = buyer_index[start : start + step]
        products = product_index[start : start + step]
        affinity = planted.affinity_by_index(buyers)
        target = affinity[np.arange(len(buyers)), products]
        rank = np.count_nonzero(affinity > target[:, None], axis=1)
        hits += int(np.count_nonzero(rank < k))
    return hits / len(buyer_index)


def oracle_top_k(
    planted: PlantedFactors,
    buyer_ids: Sequence[str] | np.ndarray,
    k: int,
    *,
    batch_size: int | None = None,
) -> np.ndarray:
    """Product ids of each buyer's k highest true-affinity products, best first, shape (n, k)."""
    _check_k(k)
    buyer_index = planted.buyer_index(buyer_ids)
    k = min(k, planted.num_products)
    step = _batch_size(planted, batch_size)
    result = np.empty((len(buyer_index), k), dtype=planted.product_ids.dtype)
    for start in range(0, len(buyer_index), step):
        affinity = planted.affinity_by_index(buyer_index[start : start + step])
        top = np.argpartition(-affinity, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(affinity, top, axis=1), axis=1, kind="stable")
        ranked = np.take_along_axis(top, order, axis=1)
        result[start : start + len(top)] = planted.product_ids[ranked]
    return result


def expected_oracle_recall_at_k(
    planted: PlantedFactors, k: int, *, batch_size: int | None = None
) -> float:
    """Expected oracle recall@k of a fresh interaction, in closed form.

    Averages each buyer's softmax probability mass on its top-k products, weighted by buyer
    activity. ``oracle_recall_at_k`` on generated rows converges to this value.
    """
    _check_k(k)
    k = min(k, planted.num_products)
    step = _batch_size(planted, batch_size)
    total = 0.0
    for start in range(0, planted.num_buyers, step):
        index = np.arange(start, min(start + step, planted.num_buyers))
        logits = planted.affinity_by_index(index) / planted.temperature
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        top_mass = np.partition(probs, probs.shape[1] - k, axis=1)[:, -k:].sum(axis=1)
        total += float(planted.buyer_activity[index] @ top_mass)
    return total


def oracle_rating(
    planted: PlantedFactors,
    buyer_ids: Sequence[str] | np.ndarray,
    product_ids: Sequence[str] | np.ndarray,
) -> np.ndarray:
    """The planted mean rating of each (buyer, product) pair: the best any rating model can
    predict, whose RMSE on generated rows is the ceiling a ranking model's RMSE can reach.

    Ratings are drawn as ``clip(RATING_CENTER + RATING_SLOPE * z + N(0, RATING_NOISE²), 1, 5)``
    rounded to 0.1, z the pair's affinity standardised over the buyer's catalogue; this is the
    expectation of the clipped normal in closed form (the rounding moves it by < 0.01).
    """
    from scipy.special import ndtr

    from synthetic.sampling import RATING_CENTER, RATING_NOISE, RATING_SLOPE, pair_affinity

    buyer_index, product_index = _pair_index(planted, buyer_ids, product_ids)
    mean, std = planted.affinity_moments()
    z = (pair_affinity(planted, buyer_index, product_index) - mean[buyer_index]) / std[buyer_index]
    center = RATING_CENTER + RATING_SLOPE * z
    low, high = (1.0 - center) / RATING_NOISE, (5.0 - center) / RATING_NOISE
    density = np.exp(-0.5 * low**2) - np.exp(-0.5 * high**2)
    inside = (center * (ndtr(high) - ndtr(low))
              + RATING_NOISE * density / np.sqrt(2.0 * np.pi))
    return 1.0 * ndtr(low) + 5.0 * (1.0 - ndtr(high)) + inside
