"""The recall benchmark's peers: one recall definition for every scorer, the most-popular list,
ALS tuned on held-out train rows only, and the gap-closed figure.

`benchmarks/peers.py` sits beside the benchmark scripts: it is loaded from its path.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from synthetic import SyntheticConfig, oracle_recall_at_k, plant_factors
from synthetic.sampling import ChunkSampler
from tasks.evaluator.trivial import PopularityRecall

from benchmark_modules import load_benchmark

peers = load_benchmark("peers.py", "recall_peers")


def test_gap_closed_is_zero_at_popularity_and_one_at_the_oracle():
    assert peers.gap_closed(0.3, popularity=0.3, oracle=0.7) == 0.0
    assert peers.gap_closed(0.7, popularity=0.3, oracle=0.7) == 1.0
    assert peers.gap_closed(0.5, popularity=0.3, oracle=0.7) == pytest.approx(0.5)
    assert peers.gap_closed(0.2, popularity=0.3, oracle=0.7) == pytest.approx(-0.25)
    assert math.isnan(peers.gap_closed(0.5, popularity=0.4, oracle=0.4))


def test_recall_of_true_affinities_is_the_oracle_recall():
    planted = plant_factors(SyntheticConfig(seed=3))
    rng = np.random.default_rng(0)
    buyers = rng.integers(0, planted.num_buyers, 900)
    products = rng.integers(0, planted.num_products, 900)
    for k in (1, 10, 100):
        ours = peers.recall_at_k(planted.affinity_by_index, buyers, products, k, batch_size=64)
        oracle = oracle_recall_at_k(planted, planted.buyer_ids[buyers],
                                    planted.product_ids[products], k)
        assert ours == oracle


def test_most_popular_is_scored_as_the_evaluator_scores_it_ties_included():
    train = np.array([0, 0, 0, 1, 1, 2, 2, 3, 4, 5])  # products 1 and 2 tie, 3..5 tie
    eval_products = np.array([0, 1, 2, 3, 4, 5, 6, 1])
    scorer = peers.most_popular_scorer(train, 7)
    assert scorer(np.array([0, 5])).shape == (2, 7)
    evaluator = PopularityRecall(np.bincount(train, minlength=7), ks=[1, 2, 4])
    evaluator.add(eval_products)
    for k in (1, 2, 4):
        ours = peers.recall_at_k(scorer, np.zeros(8, dtype=int), eval_products, k)
        assert ours == pytest.approx(evaluator.result()[f"recall_at_{k}"])
    # k=2: product 0 is in; 1 and 2 share the one place left: (1 + 0.5 + 0.5 + 0.5) / 8.
    assert peers.recall_at_k(scorer, np.zeros(8, dtype=int), eval_products, 2) == 2.5 / 8


def test_select_best_keeps_the_highest_and_the_earliest_of_equals():
    scores = {"a": 0.2, "b": 0.5, "c": 0.5, "d": 0.1}
    selection = peers.select_best(list(scores), scores.__getitem__)
    assert selection.best == "b" and selection.best_score == 0.5
    assert selection.scores == list(scores.items())
    with pytest.raises(ValueError, match="empty grid"):
        peers.select_best([], scores.__getitem__)
    grid = peers.als_grid((8, 16, 32), (0.1,), (10, 20), (1.0, 10.0))
    assert len(grid) == 12 and len(set(grid)) == 12
    assert peers.grid_edges(peers.AlsParams(16, 0.1, 20, 1.0), grid) == []
    assert peers.grid_edges(peers.AlsParams(32, 0.1, 10, 10.0), grid) == ["factors=32 (highest)"]
    assert peers.grid_edges(peers.AlsParams(8, 0.1, 10, 10.0), grid) == ["factors=8 (lowest)"]


def test_holdout_takes_a_share_of_each_buyer_and_never_all_of_it():
    buyers = np.repeat(np.arange(6), [1, 2, 3, 5, 10, 40])
    held = peers.holdout_mask(buyers, 0.2, seed=1)
    per_buyer = np.bincount(buyers[held], minlength=6)
    assert per_buyer.tolist() == [0, 0, 1, 1, 2, 8]
    np.testing.assert_array_equal(held, peers.holdout_mask(buyers, 0.2, seed=1))
    assert not np.array_equal(held, peers.holdout_mask(buyers, 0.2, seed=2))


def test_tuned_als_beats_most_popular_on_planted_data():
    config = SyntheticConfig(rows=12_000, buyers=200, products=150, chunk_rows=12_000, seed=1)
    planted = plant_factors(config)
    chunk = ChunkSampler(config, planted).chunk(0)
    buyers, products = chunk.buyer_index, chunk.product_index
    train, k = slice(0, 9_600), 20
    eval_buyers, eval_products = buyers[9_600:], products[9_600:]
    grid = peers.als_grid((8, 16), (0.1, 1.0), (10,), (1.0, 10.0))
    tuning = peers.tune_als(buyers[train], products[train], planted.num_buyers,
                            planted.num_products, k=k, seed=1, grid=grid)
    assert len(tuning.selection.scores) == len(grid)
    assert tuning.model.params == tuning.selection.best
    assert tuning.model.user_factors.shape == (planted.num_buyers, tuning.model.params.factors)
    assert 0 < tuning.validation_rows < 9_600 * 0.25

    als = peers.recall_at_k(tuning.model.score, eval_buyers, eval_products, k)
    popularity = peers.recall_at_k(peers.most_popular_scorer(products[train], 150),
                                   eval_buyers, eval_products, k)
    oracle = oracle_recall_at_k(planted, planted.buyer_ids[eval_buyers],
                                planted.product_ids[eval_products], k)
    assert popularity + 0.05 < als < oracle
    assert 0.2 < peers.gap_closed(als, popularity, oracle) < 1.0
    # Same seed, same fit.
    again = peers.fit_als(peers.interaction_matrix(buyers[train], products[train], 200, 150),
                          tuning.model.params, seed=1)
    np.testing.assert_array_equal(again.item_factors, tuning.model.item_factors)


def test_report_puts_scorers_side_by_side():
    table = peers.report({"oracle": 0.8, "ALS": 0.6, "most popular": 0.4},
                         oracle="oracle", popularity="most popular", k=100)
    lines = table.splitlines()
    assert lines[0].split() == ["scorer", "recall@100", "/", "oracle", "gap", "closed"]
    rows = {line.rsplit(None, 3)[0]: line.split()[-3:] for line in lines[1:]}
    assert rows["oracle"] == ["0.8000", "1.000", "1.000"]
    assert rows["ALS"] == ["0.6000", "0.750", "0.500"]
    assert rows["most popular"] == ["0.4000", "0.500", "0.000"]
