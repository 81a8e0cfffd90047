"""Product sampling: exact softmax(affinity / temperature), independent of batching."""

from __future__ import annotations

import numpy as np

from synthetic import PlantedFactors, SyntheticConfig, plant_factors
from synthetic.sampling import ChunkSampler, sample_products


def _tiny_planted(temperature: float) -> PlantedFactors:
    buyer_factors = np.array([[1.0, 0.0], [0.0, 2.0]])
    product_factors = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    return PlantedFactors(
        buyer_factors=buyer_factors,
        product_factors=product_factors,
        popularity_bias=np.array([0.0, 0.3, 0.0, 0.0, 0.5]),
        temperature=temperature,
        buyer_ids=np.array(["B000000", "B000001"]),
        product_ids=np.array([f"P{i:06d}" for i in range(5)]),
        product_category=np.array(["cat_00"] * 5),
        buyer_city=np.array(["city_00", "city_00"]),
        buyer_activity=np.array([0.5, 0.5]),
    )


def test_sampled_frequencies_match_softmax_probabilities() -> None:
    planted = _tiny_planted(temperature=0.7)
    rng = np.random.default_rng(123)
    draws = 100_000
    buyers = np.repeat([0, 1], draws)
    # A budget of one buyer per CDF block also exercises the batching path.
    products = sample_products(planted, buyers, rng.random(2 * draws), cdf_budget=1)
    expected = planted.choice_probabilities(planted.buyer_ids)
    for buyer in (0, 1):
        observed = np.bincount(products[buyers == buyer], minlength=5) / draws
        np.testing.assert_allclose(observed, expected[buyer], atol=0.006)


def test_lower_temperature_concentrates_choices_on_the_best_product() -> None:
    uniforms = np.random.default_rng(5).random(20_000)
    buyers = np.zeros(20_000, dtype=np.int64)
    shares = []
    for temperature in (2.0, 0.2):
        products = sample_products(_tiny_planted(temperature), buyers, uniforms)
        shares.append(np.mean(products == 0))  # product 0 has buyer 0's highest affinity
    assert shares[1] > shares[0] + 0.3


def test_batching_does_not_change_the_sample() -> None:
    config = SyntheticConfig(buyers=60, products=40, categories=5, cities=3, seed=11)
    planted = plant_factors(config)
    rng = np.random.default_rng(0)
    buyers = rng.integers(0, 60, size=5_000)
    uniforms = rng.random(5_000)
    whole = sample_products(planted, buyers, uniforms)
    one_buyer_at_a_time = sample_products(planted, buyers, uniforms, cdf_budget=40)
    np.testing.assert_array_equal(whole, one_buyer_at_a_time)


def test_single_product_catalogue_always_yields_that_product() -> None:
    config = SyntheticConfig(rows=1_000, buyers=3, products=1, categories=1, cities=1)
    chunk = ChunkSampler(config, plant_factors(config)).chunk(0)
    assert chunk.num_rows == 1_000
    assert set(chunk.product_index.tolist()) == {0}


def test_buyer_activity_is_skewed_and_followed() -> None:
    config = SyntheticConfig(rows=50_000, chunk_rows=50_000, seed=3)
    planted = plant_factors(config)
    chunk = ChunkSampler(config, planted).chunk(0)
    counts = np.bincount(chunk.buyer_index, minlength=config.buyers)
    top_decile = np.sort(planted.buyer_activity)[-50:].sum()
    assert top_decile > 0.25  # lognormal: the most active 10% place far more than 10% of rows
    observed_top = counts[np.argsort(planted.buyer_activity)[-50:]].sum() / 50_000
    assert abs(observed_top - top_decile) < 0.02
