"""Zipf popularity skew (`product_popularity_zipf`): it skews the data, None changes nothing,
and the oracle stays the best ranking there is."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from synthetic import (
    SyntheticConfig,
    expected_oracle_recall_at_k,
    generate,
    oracle_recall_at_k,
    oracle_top_k,
    plant_factors,
)
from synthetic.planted import PlantedFactors, popularity_ranks
from synthetic.sampling import ChunkSampler

# Rows are i.i.d., so the first rows of one sample serve as "train", the rest as "eval".
SKEWED = dict(rows=20_000, buyers=500, products=400, chunk_rows=20_000, seed=3)
TRAIN_ROWS = 15_000
K = 50


def _rows(config: SyntheticConfig) -> tuple[PlantedFactors, np.ndarray, np.ndarray]:
    planted = plant_factors(config)
    chunk = ChunkSampler(config, planted).chunk(0)
    return planted, chunk.buyer_index, chunk.product_index


def _top_share(products: np.ndarray, num_products: int, share: float) -> float:
    counts = np.sort(np.bincount(products, minlength=num_products))[::-1]
    return counts[: max(1, int(num_products * share))].sum() / counts.sum()


def test_top_products_take_a_larger_share_as_the_exponent_grows() -> None:
    config = dict(rows=20_000, buyers=500, products=1_000, chunk_rows=20_000, seed=7)
    shares = []
    for exponent in (None, 0.5, 1.0, 1.5):
        planted, _, products = _rows(SyntheticConfig(**config, product_popularity_zipf=exponent))
        shares.append(_top_share(products, planted.num_products, 0.01))
    assert all(later > earlier for earlier, later in zip(shares, shares[1:])), shares
    # Without skew the top 1% (10 products) take under 10%; with s = 1.5 over half.
    assert shares[0] < 0.1
    assert shares[-1] > 0.5


def test_the_zipf_term_is_minus_s_temperature_ln_rank_and_changes_nothing_else() -> None:
    plain = plant_factors(SyntheticConfig(seed=5, temperature=0.7))
    skewed = plant_factors(SyntheticConfig(seed=5, temperature=0.7, product_popularity_zipf=1.2))
    ranks = popularity_ranks(5, plain.num_products)
    assert sorted(ranks.tolist()) == list(range(1, plain.num_products + 1))
    np.testing.assert_allclose(
        skewed.popularity_bias - plain.popularity_bias, -1.2 * 0.7 * np.log(ranks), atol=1e-12
    )
    for name in ("buyer_factors", "product_factors", "buyer_activity"):
        np.testing.assert_array_equal(getattr(skewed, name), getattr(plain, name))
    # So each buyer's choice probability is multiplied by rank^-s (then renormalised).
    ratio = skewed.choice_probabilities(["B000001"])[0] / plain.choice_probabilities(["B000001"])[0]
    np.testing.assert_allclose(ratio * ranks**1.2, (ratio * ranks**1.2)[0], rtol=1e-9)


def test_without_an_exponent_the_data_is_what_it_was(tmp_path: Path) -> None:
    dataset = generate(SyntheticConfig(rows=3_000, seed=0), tmp_path / "plain")
    # The first rows of seed 0 as the generator wrote them before the Zipf option existed.
    with open(dataset.files[0], encoding="utf-8") as handle:
        rows = [line.split(",") for line in handle.read().splitlines()[1:5]]
    assert [(r[0], r[1], r[5], r[6]) for r in rows] == [
        ("B000457", "P000037", "4", "3.6"),
        ("B000193", "P000113", "7", "4.2"),
        ("B000444", "P000051", "5", "5.0"),
        ("B000118", "P000119", "6", "4.4"),
    ]
    # The manifest does not mention the unset option, so it is byte for byte the old one.
    manifest = json.loads(dataset.manifest_path.read_text())
    assert "product_popularity_zipf" not in manifest["config"]
    skewed = generate(
        SyntheticConfig(rows=3_000, seed=0, product_popularity_zipf=1.0), tmp_path / "skewed"
    )
    assert json.loads(skewed.manifest_path.read_text())["config"]["product_popularity_zipf"] == 1.0
    assert skewed.files[0].read_bytes() != dataset.files[0].read_bytes()


def test_the_exponent_is_validated() -> None:
    with pytest.raises(ValidationError, match="product_popularity_zipf"):
        SyntheticConfig(product_popularity_zipf=-0.5)


def _recall_of_top_k(top: np.ndarray, buyers: np.ndarray, products: np.ndarray) -> float:
    """Recall of a per-buyer top-k list (rows: buyer index), no ties, nothing excluded."""
    return float(np.mean(np.any(top[buyers] == products[:, None], axis=1)))


def test_the_oracle_still_ranks_best_under_zipf() -> None:
    config = SyntheticConfig(**SKEWED, product_popularity_zipf=1.2)
    planted, buyers, products = _rows(config)
    eval_buyers, eval_products = buyers[TRAIN_ROWS:], products[TRAIN_ROWS:]
    oracle = oracle_recall_at_k(
        planted, planted.buyer_ids[eval_buyers], planted.product_ids[eval_products], K
    )
    # Cheap rivals: the train split's most popular products, the Zipf prior alone (knows the
    # true ranks), and the planted factors without the Zipf term.
    counts = np.bincount(products[:TRAIN_ROWS], minlength=planted.num_products)
    most_popular = np.argsort(-counts, kind="stable")[:K]
    zipf_prior = np.argsort(popularity_ranks(config.seed, planted.num_products))[:K]
    everyone = np.arange(planted.num_buyers)
    rivals = {
        "most popular": _recall_of_top_k(np.tile(most_popular, (planted.num_buyers, 1)),
                                         eval_buyers, eval_products),
        "zipf prior": _recall_of_top_k(np.tile(zipf_prior, (planted.num_buyers, 1)),
                                       eval_buyers, eval_products),
    }
    plain = plant_factors(SyntheticConfig(**SKEWED))
    rivals["factors without zipf"] = _recall_of_top_k(
        np.argsort(-plain.affinity_by_index(everyone), axis=1)[:, :K], eval_buyers, eval_products
    )
    for name, recall in rivals.items():
        assert oracle > recall, (name, recall, oracle)
    # The measured oracle recall is the closed form's (5_000 rows: sd ~ 0.005).
    assert oracle == pytest.approx(expected_oracle_recall_at_k(planted, K), abs=0.025)


def test_no_ranking_captures_more_choice_probability_than_the_oracle() -> None:
    """Per buyer, in expectation: the oracle's top k hold the most probability mass of the
    distribution the rows are drawn from, more than the same rivals' top k."""
    config = SyntheticConfig(**SKEWED, product_popularity_zipf=1.2)
    planted = plant_factors(config)
    probs = planted.choice_probabilities(planted.buyer_ids)
    best_mass = np.sort(probs, axis=1)[:, -K:].sum(axis=1)
    oracle_top = planted.product_index(oracle_top_k(planted, planted.buyer_ids, K).ravel())
    oracle_mass = np.take_along_axis(probs, oracle_top.reshape(-1, K), axis=1).sum(axis=1)
    np.testing.assert_allclose(oracle_mass, best_mass, rtol=1e-12)
    plain = plant_factors(SyntheticConfig(**SKEWED))
    stale_top = np.argsort(-plain.affinity_by_index(np.arange(planted.num_buyers)), axis=1)[:, :K]
    stale_mass = np.take_along_axis(probs, stale_top, axis=1).sum(axis=1)
    prior_top = np.argsort(popularity_ranks(config.seed, planted.num_products))[:K]
    prior_mass = probs[:, prior_top].sum(axis=1)
    assert np.all(oracle_mass >= stale_mass - 1e-12)
    assert np.all(oracle_mass >= prior_mass - 1e-12)
    assert planted.buyer_activity @ oracle_mass == pytest.approx(
        expected_oracle_recall_at_k(planted, K), rel=1e-9
    )
    # And the sampler draws from exactly that distribution: observed counts follow it.
    _, buyers, products = _rows(config)
    expected = np.bincount(buyers, minlength=planted.num_buyers) @ probs
    observed = np.bincount(products, minlength=planted.num_products)
    assert np.corrcoef(expected, observed)[0, 1] > 0.99
