"""Planted structure is real and the oracle helpers measure it correctly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from synthetic_helpers import SMALL

from synthetic import (
    SyntheticConfig,
    SyntheticDataset,
    expected_oracle_recall_at_k,
    load_planted,
    oracle_recall_at_k,
    oracle_top_k,
    plant_factors,
)


def test_oracle_recall_on_generated_rows_is_far_above_random(
    parquet_dataset: SyntheticDataset, parquet_columns: dict[str, np.ndarray]
) -> None:
    planted = load_planted(parquet_dataset.factors_path)
    k = 10
    buyers, products = parquet_columns["buyer_id"], parquet_columns["product_id"]
    recall = oracle_recall_at_k(planted, buyers, products, k)
    random_baseline = k / planted.num_products
    assert recall > 5 * random_baseline
    # The measured value agrees with the closed-form expectation (3_000 rows: sd ~ 0.009).
    assert recall == pytest.approx(expected_oracle_recall_at_k(planted, k), abs=0.04)


def test_oracle_recall_of_random_products_is_the_random_baseline(
    parquet_dataset: SyntheticDataset, parquet_columns: dict[str, np.ndarray]
) -> None:
    planted = load_planted(parquet_dataset.factors_path)
    random_products = np.random.default_rng(0).choice(planted.product_ids, size=3_000)
    recall = oracle_recall_at_k(planted, parquet_columns["buyer_id"], random_products, 10)
    assert recall == pytest.approx(10 / planted.num_products, abs=0.015)


def test_products_with_higher_true_affinity_occur_more_often(
    parquet_dataset: SyntheticDataset, parquet_columns: dict[str, np.ndarray]
) -> None:
    planted = load_planted(parquet_dataset.factors_path)
    buyers = planted.buyer_index(parquet_columns["buyer_id"])
    products = planted.product_index(parquet_columns["product_id"])
    affinity = planted.affinity_by_index(np.arange(planted.num_buyers))
    # Rank 0 = the buyer's best product. Chosen products concentrate in the top ranks.
    ranks = np.argsort(np.argsort(-affinity, axis=1), axis=1)[buyers, products]
    counts_by_rank_decile = np.bincount(ranks * 10 // planted.num_products, minlength=10)
    assert np.all(np.diff(counts_by_rank_decile[:5]) < 0)
    assert counts_by_rank_decile[0] > 10 * counts_by_rank_decile[5:].sum() / 5
    # Product popularity in the data follows the planted expectation.
    seen_buyers = np.bincount(buyers, minlength=planted.num_buyers)
    expected = seen_buyers @ planted.choice_probabilities(planted.buyer_ids)
    observed = np.bincount(products, minlength=planted.num_products)
    assert np.corrcoef(expected, observed)[0, 1] > 0.9


def test_top_k_agrees_with_recall() -> None:
    planted = plant_factors(SyntheticConfig(seed=2))
    buyers = planted.buyer_ids[:20]
    top = oracle_top_k(planted, buyers, 5)
    assert top.shape == (20, 5)
    affinity = planted.true_affinity(buyers)
    best = planted.product_ids[np.argmax(affinity, axis=1)]
    np.testing.assert_array_equal(top[:, 0], best)
    assert oracle_recall_at_k(planted, np.repeat(buyers, 5), top.ravel(), 5) == 1.0
    assert oracle_recall_at_k(planted, buyers, top[:, 4], 4) == 0.0


def test_recall_does_not_depend_on_batch_size() -> None:
    planted = plant_factors(SyntheticConfig(seed=4))
    rng = np.random.default_rng(1)
    buyers = rng.choice(planted.buyer_ids, 700)
    products = rng.choice(planted.product_ids, 700)
    assert oracle_recall_at_k(planted, buyers, products, 20, batch_size=1) == oracle_recall_at_k(
        planted, buyers, products, 20
    )


def test_oracle_rejects_bad_input() -> None:
    planted = plant_factors(SyntheticConfig())
    with pytest.raises(KeyError, match="B999999"):
        oracle_recall_at_k(planted, ["B999999"], ["P000001"], 10)
    with pytest.raises(ValueError, match="k must be >= 1"):
        oracle_recall_at_k(planted, ["B000001"], ["P000001"], 0)
    with pytest.raises(ValueError, match="equal length"):
        oracle_recall_at_k(planted, ["B000001", "B000002"], ["P000001"], 10)


def test_saved_factors_round_trip(parquet_dataset: SyntheticDataset) -> None:
    loaded = load_planted(parquet_dataset.factors_path)
    planted = plant_factors(SyntheticConfig(**SMALL))
    for name in ("buyer_factors", "product_factors", "popularity_bias", "buyer_activity"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(planted, name))
    for name in ("buyer_ids", "product_ids", "product_category", "buyer_city"):
        assert getattr(loaded, name).tolist() == getattr(planted, name).tolist()
    assert loaded.temperature == planted.temperature
    assert loaded.true_affinity(["B000003"]).shape == (1, 200)


def test_loading_something_else_fails_clearly(tmp_path: Path) -> None:
    path = tmp_path / "other.npz"
    np.savez(path, x=np.zeros(3))
    with pytest.raises(ValueError, match="not a planted-factors file"):
        load_planted(path)


def test_the_oracle_rating_is_the_planted_mean_and_beats_the_train_mean(
    parquet_dataset: SyntheticDataset, parquet_columns: dict[str, np.ndarray]
) -> None:
    from synthetic import oracle_rating
    from synthetic.sampling import RATING_NOISE

    planted = load_planted(parquet_dataset.factors_path)
    ratings = parquet_columns["rating"]
    predicted = oracle_rating(planted, parquet_columns["buyer_id"], parquet_columns["product_id"])
    assert predicted.shape == ratings.shape
    assert ((predicted >= 1.0) & (predicted <= 5.0)).all()
    residual = ratings - predicted
    # Unbiased (3_000 rows, noise sd 0.5: the mean's sd is ~0.01) and as far off as the
    # planted noise, less the clipping; the overall mean is much further off.
    assert abs(residual.mean()) < 0.04
    oracle_rmse = float(np.sqrt(np.mean(residual**2)))
    assert 0.8 * RATING_NOISE < oracle_rmse < 1.05 * RATING_NOISE
    assert oracle_rmse < 0.75 * float(np.std(ratings))


def test_the_oracle_rating_of_a_pair_is_the_mean_of_its_draws() -> None:
    """Against the generator's own formula (clip included), by Monte Carlo."""
    from synthetic import oracle_rating
    from synthetic.sampling import RATING_CENTER, RATING_NOISE, RATING_SLOPE, pair_affinity

    planted = plant_factors(SyntheticConfig(**SMALL))
    buyers = np.repeat(np.arange(3), 4)
    products = np.tile(np.arange(4), 3)
    mean, std = planted.affinity_moments()
    z = (pair_affinity(planted, buyers, products) - mean[buyers]) / std[buyers]
    noise = np.random.default_rng(1).normal(0.0, RATING_NOISE, size=(200_000, 1))
    draws = np.clip(RATING_CENTER + RATING_SLOPE * z + noise, 1.0, 5.0)
    expected = oracle_rating(planted, planted.buyer_ids[buyers], planted.product_ids[products])
    np.testing.assert_allclose(expected, draws.mean(axis=0), atol=0.005)
