"""The known-products ceiling: the best ranking the train rows allow when the product side
is known, between the buyers' prior and the oracle."""

from __future__ import annotations

import numpy as np
import pytest

from synthetic import SyntheticConfig, plant_factors
from synthetic.posterior import buyer_prior_means, known_products_scores, log_posterior


def _planted(**overrides):
    return plant_factors(SyntheticConfig(buyers=200, products=150, seed=7, **overrides))


def _rows(planted, per_buyer: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`per_buyer` rows of every buyer, drawn from the planted choice model."""
    rng = np.random.default_rng(seed)
    probs = planted.choice_probabilities(planted.buyer_ids)
    buyers = np.repeat(np.arange(planted.num_buyers), per_buyer)
    cumulative = probs.cumsum(axis=1)[buyers]
    products = (cumulative < rng.random(len(buyers))[:, None]).sum(axis=1)
    return buyers, np.minimum(products, planted.num_products - 1)


def _recall(scores: np.ndarray, buyers: np.ndarray, products: np.ndarray, k: int) -> float:
    target = scores[buyers, products][:, None]
    return float(np.mean((scores[buyers] > target).sum(axis=1) < k))


def _factors(planted, scorer) -> np.ndarray:
    """The buyer factors behind a scorer's scores (least squares on the product side)."""
    scores = scorer(np.arange(planted.num_buyers)) - planted.popularity_bias
    return np.linalg.lstsq(planted.product_factors, scores.T, rcond=None)[0].T


def test_each_buyer_gets_the_most_probable_factor_given_its_rows():
    planted = _planted()
    buyers, products = _rows(planted, 20, seed=1)
    counts = np.zeros((planted.num_buyers, planted.num_products))
    np.add.at(counts, (buyers, products), 1.0)
    means = buyer_prior_means(planted)
    found = _factors(planted, known_products_scores(planted, buyers, products))

    at_found = log_posterior(planted, counts, found, means)
    # Above the planted factors themselves, and above any small move away from it.
    assert np.all(at_found >= log_posterior(planted, counts, planted.buyer_factors, means))
    rng = np.random.default_rng(2)
    for _ in range(5):
        moved = found + 1e-3 * rng.standard_normal(found.shape)
        assert np.all(at_found >= log_posterior(planted, counts, moved, means) - 1e-9)


def test_a_buyer_without_rows_gets_its_city_mean():
    planted = _planted()
    buyers, products = _rows(planted, 10, seed=1)
    keep = buyers != 0
    scorer = known_products_scores(planted, buyers[keep], products[keep])
    expected = buyer_prior_means(planted)[0] @ planted.product_factors.T + planted.popularity_bias
    np.testing.assert_allclose(scorer(np.array([0]))[0], expected, atol=1e-9)


@pytest.mark.parametrize("zipf", [None, 1.2])
def test_the_ceiling_rises_with_rows_per_buyer_towards_the_oracle(zipf):
    planted = _planted(product_popularity_zipf=zipf)
    eval_buyers, eval_products = _rows(planted, 50, seed=9)
    oracle = _recall(planted.affinity_by_index(np.arange(planted.num_buyers)),
                     eval_buyers, eval_products, k=15)
    everyone = np.arange(planted.num_buyers)
    recalls = []
    for per_buyer in (0, 5, 40, 400):
        buyers, products = _rows(planted, per_buyer, seed=1)
        scores = known_products_scores(planted, buyers, products)(everyone)
        recalls.append(_recall(scores, eval_buyers, eval_products, k=15))
    assert recalls == sorted(recalls)
    assert recalls[-1] > recalls[0] + 0.02
    assert recalls[-1] <= oracle + 0.01
    assert recalls[-1] == pytest.approx(oracle, abs=0.02)
