"""The Bayesian factor model behind the recall benchmark's `--posterior` row: its sampler
draws from the posterior it is given, its feedback likelihood reads capped ratings right, and
its predictive ranks held-out rows."""

from __future__ import annotations

import numpy as np
import pytest

from synthetic import SyntheticConfig, plant_factors
from synthetic.sampling import ChunkSampler

from benchmark_modules import load_benchmark

posterior_fit = load_benchmark("posterior_fit.py", "posterior_fit")


def test_langevin_draws_each_coordinate_with_its_posterior_variance():
    curvature = np.geomspace(1.0, 1000.0, 40)
    rng = np.random.default_rng(0)
    moments = np.zeros((2, curvature.size))

    def value_and_grad(x):
        return 0.5 * np.sum(curvature * x**2), curvature * x, x

    def accumulate(x):
        moments[0] += x
        moments[1] += x**2

    kept = posterior_fit.langevin(value_and_grad, np.zeros(curvature.size), 1.0 / curvature,
                                  step_size=0.05, steps=20_000, burn_in=500, rng=rng,
                                  accumulate=accumulate)
    mean, second = moments / kept
    ratio = (second - mean**2) * curvature
    # Unadjusted Langevin's own bias at step 0.05 is a factor 1 / (1 - 0.05 / 2) = 1.026.
    assert kept == 19_500
    assert ratio.mean() == pytest.approx(1.026, abs=0.03)
    assert np.all((ratio > 0.7) & (ratio < 1.4))
    assert np.all(np.abs(mean * np.sqrt(curvature)) < 0.3)


def test_capped_ratings_and_quantities_give_back_the_link_they_were_written_with():
    import tensorflow as tf
    from scipy.optimize import minimize

    rng = np.random.default_rng(3)
    z = rng.normal(2.0, 1.0, 20_000)  # chosen products sit high in their buyer's catalogue
    ratings = np.round(np.clip(3.0 + 0.8 * z + rng.normal(0.0, 0.5, z.size), 1.0, 5.0), 1)
    quantities = 1.0 + rng.poisson(np.exp(0.3 + 0.5 * z))
    assert np.mean(ratings == 5.0) > 0.3  # a third of the rows sit at the cap

    z_t, r_t, q_t = (tf.constant(v, tf.float64) for v in (z, ratings, quantities))

    def objective(link):
        link = tf.constant(link)
        with tf.GradientTape() as tape:
            tape.watch(link)
            value = -posterior_fit.feedback_log_likelihood(tf, z_t, r_t, q_t, link)
        return float(value), tape.gradient(value, link).numpy()

    shift, slope, log_sigma, alpha, beta = minimize(
        objective, np.array(posterior_fit.LINK_START), jac=True, method="L-BFGS-B").x
    assert shift == pytest.approx(0.0, abs=0.03)
    assert slope == pytest.approx(0.8, abs=0.03)
    assert 0.5 * np.exp(log_sigma) == pytest.approx(0.5, abs=0.03)
    assert alpha == pytest.approx(0.3, abs=0.05)
    assert beta == pytest.approx(0.5, abs=0.03)


def _recall(scores: np.ndarray, buyers: np.ndarray, products: np.ndarray, k: int) -> float:
    return float(np.mean((scores[buyers] > scores[buyers, products][:, None]).sum(axis=1) < k))


def test_the_predictive_from_choices_ratings_and_quantities_beats_the_popular_list():
    config = SyntheticConfig(rows=6_000, buyers=150, products=80, seed=7)
    planted = plant_factors(config)
    rows = ChunkSampler(config, planted).chunk(0)
    train = np.arange(rows.num_rows) % 5 != 0
    fitted = posterior_fit.fit(
        posterior_fit.TrainRows(
            buyers=rows.buyer_index[train], products=rows.product_index[train],
            ratings=rows.rating[train], quantities=rows.quantity[train].astype(float),
            buyer_group=np.unique(planted.buyer_city, return_inverse=True)[1],
            product_group=np.unique(planted.product_category, return_inverse=True)[1]),
        posterior_fit.PosteriorFitConfig(map_iterations=300, steps=300, burn_in=100))

    assert fitted.samples == 200
    np.testing.assert_allclose(fitted.predictive.sum(axis=1), 1.0, rtol=1e-9)
    eval_buyers, eval_products = rows.buyer_index[~train], rows.product_index[~train]
    counts = np.bincount(rows.product_index[train], minlength=planted.num_products)
    popular = np.tile(counts.astype(float), (planted.num_buyers, 1))
    oracle = planted.affinity_by_index(np.arange(planted.num_buyers))
    floor = _recall(popular, eval_buyers, eval_products, k=10)
    predictive = _recall(fitted.predictive, eval_buyers, eval_products, k=10)
    assert floor + 0.1 < predictive <= _recall(oracle, eval_buyers, eval_products, k=10) + 0.01
