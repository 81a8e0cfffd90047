"""The rating benchmark's peers: the train mean and a biased matrix factorisation tuned on
held-out train rows only, against the planted oracle rating, and the gap-closed figure for an
error (`benchmarks/peers.py`, loaded from its path as in test_recommender_peers.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_recommender_peers import peers

from synthetic import SyntheticConfig, oracle_rating, plant_factors
from synthetic.sampling import ChunkSampler


def test_gap_closed_of_an_error_is_zero_at_the_train_mean_and_one_at_the_oracle():
    assert peers.rmse_gap_closed(1.0, floor=1.0, oracle=0.5) == 0.0
    assert peers.rmse_gap_closed(0.5, floor=1.0, oracle=0.5) == 1.0
    assert peers.rmse_gap_closed(0.6, floor=1.0, oracle=0.5) == pytest.approx(0.8)
    assert peers.rmse_gap_closed(1.1, floor=1.0, oracle=0.5) == pytest.approx(-0.2)
    assert math.isnan(peers.rmse_gap_closed(0.7, floor=0.5, oracle=0.5))
    assert peers.rmse(np.array([1.0, 3.0]), np.array([2.0, 2.0])) == 1.0


def test_each_group_gets_its_own_ridge_solution():
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 5, 300)
    groups[groups == 3] = 4  # group 3 has no rows
    design = rng.normal(size=(300, 3))
    target = rng.normal(size=300)
    solved = peers._ridge_rows(groups, 6, design, target, regularization=2.0)
    assert solved.shape == (6, 3)
    for group in range(6):
        x, y = design[groups == group], target[groups == group]
        expected = np.linalg.solve(x.T @ x + 2.0 * np.eye(3), x.T @ y)
        np.testing.assert_allclose(solved[group], expected, atol=1e-10)
    assert not solved[3].any() and not solved[5].any()


def test_the_factorisation_recovers_planted_biases_and_factors():
    rng = np.random.default_rng(1)
    buyers, products, n = 300, 120, 24_000
    b, p = rng.integers(0, buyers, n), rng.integers(0, products, n)
    buyer_bias, product_bias = rng.normal(0, 0.5, buyers), rng.normal(0, 0.5, products)
    buyer_f, product_f = rng.normal(0, 0.6, (buyers, 4)), rng.normal(0, 0.6, (products, 4))
    ratings = (3.0 + buyer_bias[b] + product_bias[p] + np.einsum("nd,nd->n", buyer_f[b],
                                                                 product_f[p])
               + rng.normal(0, 0.1, n))
    train, test = slice(0, 20_000), slice(20_000, None)
    errors = {}
    for factors in (0, 4):
        model = peers.fit_biased_mf(b[train], p[train], ratings[train], buyers, products,
                                    peers.MfParams(factors, 1.0, 15), seed=0)
        errors[factors] = peers.rmse(model.predict(b[test], p[test]), ratings[test])
    mean_only = peers.rmse(np.full(n - 20_000, ratings[train].mean()), ratings[test])
    assert errors[0] < 0.85 * mean_only  # the biases alone explain part of it
    assert errors[4] < 0.2  # with the factors: near the noise (0.1)


def test_tuned_factorisation_lies_between_the_train_mean_and_the_oracle_on_planted_data():
    config = SyntheticConfig(rows=30_000, buyers=300, products=150, chunk_rows=30_000, seed=2)
    planted = plant_factors(config)
    chunk = ChunkSampler(config, planted).chunk(0)
    buyers, products, ratings = chunk.buyer_index, chunk.product_index, chunk.rating
    train, test = slice(0, 24_000), slice(24_000, None)
    grid = [peers.MfParams(f, r, 8) for f in (0, 8) for r in (3.0, 30.0)]
    tuning = peers.tune_biased_mf(buyers[train], products[train], ratings[train], 300, 150,
                                  seed=2, grid=grid)
    assert len(tuning.selection.scores) == 4 and tuning.model.params == tuning.selection.best
    assert 0 < tuning.validation_rows < 24_000 * 0.25

    mf = peers.rmse(tuning.model.predict(buyers[test], products[test]), ratings[test])
    floor = peers.rmse(np.full(6_000, ratings[train].mean()), ratings[test])
    oracle = peers.rmse(oracle_rating(planted, planted.buyer_ids[buyers[test]],
                                      planted.product_ids[products[test]]), ratings[test])
    assert oracle < mf < floor - 0.05
    table = peers.rmse_report({"oracle": oracle, "MF": mf, "train mean": floor},
                              oracle="oracle", floor="train mean")
    rows = {line.split()[0]: line.split()[-2:] for line in table.splitlines()[1:]}
    assert rows["oracle"][1] == "1.000" and rows["train"][1] == "0.000"
    assert 0.0 < float(rows["MF"][1]) < 1.0
