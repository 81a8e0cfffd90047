"""The known-products ceiling: how well any learner could rank from the rows it was given.

The oracle ranks by the planted affinity, which no finite sample reveals. A learner sees a
buyer's train rows only; even one that knew every product's planted factors, its popularity
bias and the temperature exactly would still have to infer the buyer's factor from those
rows. `known_products_scores` does exactly that inference: each buyer's factor is its
maximum a posteriori estimate under the planted prior (the mean buyer factor of its city,
covariance ``(1 - CITY_SHARE) I``) and the planted choice model (``softmax(affinity /
temperature)`` per row), found by Newton's method with backtracking; the buyer's score of a
product is then its estimated affinity. A buyer without train rows gets its city's mean.

A learned model has to estimate the product side from the same rows as well, so the ceiling's
recall is above what a learner can be expected to reach, and below the oracle's by what the
rows cannot tell about the buyers.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from synthetic.planted import CITY_SHARE, PlantedFactors

# Buyers per Newton batch: a batch holds a few (buyers, products) float64 matrices.
POSTERIOR_BATCH = 1_000
MAX_ITERATIONS = 50
# Halvings of a buyer's step before it is left where it is for this iteration.
MAX_HALVINGS = 30


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def buyer_prior_means(planted: PlantedFactors) -> np.ndarray:
    """(buyers, latent_dim): each buyer's prior mean, the mean planted factor of its city."""
    _, city = np.unique(planted.buyer_city, return_inverse=True)
    sums = np.zeros((city.max() + 1, planted.buyer_factors.shape[1]))
    np.add.at(sums, city, planted.buyer_factors)
    return (sums / np.bincount(city)[:, None])[city]


def log_posterior(planted: PlantedFactors, counts: np.ndarray, factors: np.ndarray,
                  prior_means: np.ndarray) -> np.ndarray:
    """Per buyer, the log posterior (up to a constant) of `factors` given `counts`
    ((buyers, products) train rows per pair) under the planted choice model and prior."""
    logits = (factors @ planted.product_factors.T + planted.popularity_bias) / planted.temperature
    likelihood = (counts * _log_softmax(logits)).sum(axis=1)
    return likelihood - ((factors - prior_means) ** 2).sum(axis=1) / (2 * (1.0 - CITY_SHARE))


def _map_factors(planted: PlantedFactors, counts: np.ndarray, prior_means: np.ndarray
                 ) -> np.ndarray:
    """Newton's method on each buyer's log posterior (concave), from the prior mean."""
    products = planted.product_factors / planted.temperature  # logit = factor . products + b
    variance = 1.0 - CITY_SHARE
    rows = counts.sum(axis=1)
    factors = prior_means.copy()
    identity = np.eye(products.shape[1])
    outer = np.einsum("pi,pj->pij", products, products).reshape(len(products), -1)
    for _ in range(MAX_ITERATIONS):
        logits = factors @ products.T + planted.popularity_bias / planted.temperature
        probs = np.exp(_log_softmax(logits))
        gradient = (counts - rows[:, None] * probs) @ products - (factors - prior_means) / variance
        mean = probs @ products
        second = (probs @ outer).reshape(len(factors), *identity.shape)
        hessian = (-rows[:, None, None] * (second - mean[:, :, None] * mean[:, None, :])
                   - identity / variance)
        step = np.linalg.solve(hessian, gradient[:, :, None])[:, :, 0]
        before = log_posterior(planted, counts, factors, prior_means)
        scale = np.ones(len(factors))
        for _ in range(MAX_HALVINGS):
            worse = log_posterior(planted, counts, factors - scale[:, None] * step,
                                  prior_means) < before
            if not worse.any():
                break
            scale[worse] /= 2
        else:
            scale[worse] = 0.0
        factors = factors - scale[:, None] * step
        if np.abs(scale[:, None] * step).max() < 1e-9:
            break
    return factors


def known_products_scores(planted: PlantedFactors, train_buyers: np.ndarray,
                          train_products: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A scorer (buyer indices -> (n, products) scores) of the known-products ceiling.

    `train_buyers` / `train_products` are planted indices of the train rows, one per row.
    """
    train_buyers, train_products = np.asarray(train_buyers), np.asarray(train_products)
    if train_buyers.shape != train_products.shape or train_buyers.ndim != 1:
        raise ValueError("train_buyers and train_products must be 1-d and of equal length")
    means = buyer_prior_means(planted)
    factors = np.empty_like(means)
    for start in range(0, planted.num_buyers, POSTERIOR_BATCH):
        stop = min(start + POSTERIOR_BATCH, planted.num_buyers)
        mine = (train_buyers >= start) & (train_buyers < stop)
        counts = np.zeros((stop - start, planted.num_products))
        np.add.at(counts, (train_buyers[mine] - start, train_products[mine]), 1.0)
        factors[start:stop] = _map_factors(planted, counts, means[start:stop])
    product_side = planted.product_factors.T
    return lambda buyers: factors[np.asarray(buyers)] @ product_side + planted.popularity_bias
