"""The posterior fit (`model.fit: posterior`): its sampler draws from the posterior it is
given, its feedback likelihood reads capped ratings and counts right, the served towers score
as the samples' mean, and on planted rows it ranks held-out choices above the popular list."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from retrain.domain.features import (
    CategoricalFeature,
    FeatureConfig,
    FeedbackFeature,
    FeedbackKind,
    NumericFeature,
    TextFeature,
)
from retrain.domain.recommender import LayerConfig, ModelConfig, PosteriorConfig
from tasks.trainer import posterior
from tasks.trainer.posterior_towers import (
    PosteriorModel,
    SampledTower,
    design,
    read_train_rows,
    train_posterior,
)

import tensorflow as tf  # noqa: E402  (after tasks.trainer set the Keras 2 env)

RATING = FeedbackFeature(column="rating", kind=FeedbackKind.RATING, low=1.0, high=5.0)
QUANTITY = FeedbackFeature(column="quantity", kind=FeedbackKind.COUNT, low=1.0)
FEATURES = FeatureConfig(
    query=[CategoricalFeature(name="buyer_id", embedding_dim=8),
           CategoricalFeature(name="city", embedding_dim=8)],
    candidate=[CategoricalFeature(name="product_id", embedding_dim=8),
               CategoricalFeature(name="category", embedding_dim=8)],
    feedback=[RATING, QUANTITY],
)


def test_langevin_draws_each_coordinate_with_its_posterior_variance():
    curvature = np.geomspace(1.0, 1000.0, 40)
    moments = np.zeros((2, curvature.size))
    kept = []

    def on_state(step, value, x):
        if step >= 500:
            moments[0] += x
            moments[1] += x**2
            kept.append(step)

    posterior.langevin(lambda x: (0.5 * np.sum(curvature * x**2), curvature * x),
                       np.zeros(curvature.size), 1.0 / curvature, step_size=0.05,
                       steps=20_000, rng=np.random.default_rng(0), on_state=on_state)
    mean, second = moments / len(kept)
    ratio = (second - mean**2) * curvature
    # Unadjusted Langevin's own bias at step 0.05 is a factor 1 / (1 - 0.05 / 2) = 1.026.
    assert ratio.mean() == pytest.approx(1.026, abs=0.03)
    assert np.all((ratio > 0.7) & (ratio < 1.4))
    assert np.all(np.abs(mean * np.sqrt(curvature)) < 0.3)


def test_capped_ratings_and_counts_give_back_the_link_they_were_written_with():
    from scipy.optimize import minimize

    rng = np.random.default_rng(3)
    z = rng.normal(2.0, 1.0, 20_000)  # chosen products sit high in their buyer's catalogue
    ratings = np.round(np.clip(3.0 + 0.8 * z + rng.normal(0.0, 0.5, z.size), 1.0, 5.0), 1)
    ratings[::10] = np.nan  # missing ratings are skipped
    quantities = 1.0 + rng.poisson(np.exp(0.3 + 0.5 * z))
    assert np.mean(ratings == 5.0) > 0.3  # a third of the rows sit at the cap
    items = [posterior.Feedback(RATING, ratings), posterior.Feedback(QUANTITY, quantities)]
    z_t = tf.constant(z)

    def objective(link):
        link = tf.constant(link)
        with tf.GradientTape() as tape:
            tape.watch(link)
            parts = tf.split(link, posterior.link_sizes(items))
            value = -sum(posterior.feedback_log_likelihood(z_t, item, part)
                         for item, part in zip(items, parts))
        return float(value), tape.gradient(value, link).numpy()

    shift, slope, log_sigma, alpha, beta = minimize(
        objective, posterior.link_start(items), jac=True, method="L-BFGS-B").x
    assert shift == pytest.approx(0.0, abs=0.03)
    assert slope == pytest.approx(0.8, abs=0.03)
    assert 0.5 * np.exp(log_sigma) == pytest.approx(0.5, abs=0.03)
    assert alpha == pytest.approx(0.3, abs=0.05)
    assert beta == pytest.approx(0.5, abs=0.03)
    # a column with no value at all still starts somewhere finite
    empty = posterior.Feedback(QUANTITY, np.full(10, np.nan))
    assert np.all(np.isfinite(posterior.link_start([empty])))


def test_a_sampled_tower_embeds_as_its_design_matrix_times_each_sample():
    features = FeatureConfig(
        query=[CategoricalFeature(name="buyer_id", embedding_dim=4),
               NumericFeature(name="age"),
               TextFeature(name="words", hash_buckets=7, embedding_dim=4)],
        candidate=[CategoricalFeature(name="product_id", embedding_dim=4)])
    columns = features.xf_columns("query")
    sizes = {"buyer_id_xf": 5, "words_xf": 7}
    ids, ages = np.array([0, 3, 4]), np.array([0.5, -1.0, 2.0], np.float32)
    words = [np.array([1, 2]), np.array([], np.int64), np.array([6, 6, 0])]
    matrix = design(columns, sizes, {"buyer_id_xf": ids, "age_xf": ages, "words_xf": words},
                    {c.name: 1.0 for c in columns}).matrix().toarray()
    assert matrix.shape == (3, 5 + 1 + 7)
    np.testing.assert_allclose(matrix[2, 6:], [1 / 3, 0, 0, 0, 0, 0, 2 / 3])
    weights = np.random.default_rng(0).normal(size=(3, 13, 2))  # 3 samples, latent 2
    tower = SampledTower(columns, sizes, weights, scale=0.5)
    served = tower({"buyer_id_xf": tf.constant(ids), "age_xf": tf.constant(ages),
                    "words_xf": tf.ragged.constant([list(w) for w in words], tf.int64)}).numpy()
    expected = np.concatenate([0.5 * matrix @ w for w in weights] + [np.ones((3, 1))], axis=1)
    assert tower.output_dim == 7
    np.testing.assert_allclose(served, expected, rtol=1e-5, atol=1e-5)


def _planted_batches(rows: int = 6_000):
    from synthetic import SyntheticConfig, plant_factors
    from synthetic.sampling import ChunkSampler

    config = SyntheticConfig(rows=rows, buyers=150, products=80, seed=7)
    planted = plant_factors(config)
    sample = ChunkSampler(config, planted).chunk(0)
    city = np.unique(planted.buyer_city, return_inverse=True)[1]
    category = np.unique(planted.product_category, return_inverse=True)[1]
    columns = {"buyer_id_xf": sample.buyer_index, "city_xf": city[sample.buyer_index],
               "product_id_xf": sample.product_index,
               "category_xf": category[sample.product_index],
               "rating__feedback_xf": sample.rating.astype(np.float32),
               "quantity__feedback_xf": sample.quantity.astype(np.float32)}
    train = np.arange(sample.num_rows) % 5 != 0
    batches = [{name: tf.constant(value[train][start:start + 1000])
                for name, value in columns.items()} for start in range(0, train.sum(), 1000)]
    corpus = {"product_id_xf": tf.constant(np.arange(80)), "category_xf": tf.constant(category)}
    return planted, sample, train, batches, corpus


def _recall(scores: np.ndarray, buyers: np.ndarray, products: np.ndarray, k: int) -> float:
    return float(np.mean((scores[buyers] > scores[buyers, products][:, None]).sum(axis=1) < k))


def test_the_served_posterior_ranks_held_out_choices_above_the_popular_list():
    planted, sample, train, batches, corpus = _planted_batches()
    sizes = {"buyer_id_xf": 151, "city_xf": 40, "product_id_xf": 81, "category_xf": 30}
    model_config = ModelConfig(type="retrieval", fit="posterior", posterior=PosteriorConfig(
        warm_start_iterations=300, steps=300, burn_in=100, samples=20, records=3))
    rows = read_train_rows(batches, FEATURES, sizes, corpus, model_config.posterior)
    # a query per buyer with train rows; the corpus's 80 products (the OOV id is none)
    assert (rows.num_queries, rows.num_candidates) == (len(np.unique(
        sample.buyer_index[train])), 80)
    assert len(rows.row_query) == train.sum()
    records = []
    model = train_posterior(model_config, FEATURES, sizes, rows, seed=0,
                            validate=lambda m: {"val_probe": float(len(m.query_tower.tables))},
                            record=records.append, log=lambda message: None)
    assert [r.epoch for r in records] == [1, 2, 3]
    # 20 samples, one every 10 steps after the burn-in: none by step 100, 10 by step 200
    assert [r.metrics["samples"] for r in records] == [0, 10, 20]
    assert all(r.metrics["val_probe"] == 2 for r in records)
    assert isinstance(model, PosteriorModel) and model.query_tower.output_dim == 20 * 8 + 1

    buyers = np.arange(150)
    city = np.unique(planted.buyer_city, return_inverse=True)[1]
    queries = model.query_tower({"buyer_id_xf": tf.constant(buyers),
                                 "city_xf": tf.constant(city)})
    candidates = model.candidate_tower(corpus).numpy()
    scores = queries.numpy() @ candidates.T
    eval_buyers, eval_products = sample.buyer_index[~train], sample.product_index[~train]
    counts = np.bincount(sample.product_index[train], minlength=80)
    popular = np.tile(counts.astype(float), (150, 1))
    oracle = planted.affinity_by_index(buyers)
    floor = _recall(popular, eval_buyers, eval_products, k=10)
    served = _recall(scores, eval_buyers, eval_products, k=10)
    assert floor + 0.1 < served <= _recall(oracle, eval_buyers, eval_products, k=10) + 0.01


def test_too_many_distinct_queries_are_refused_with_the_sizes():
    _, sample, train, batches, corpus = _planted_batches(rows=2_000)
    buyers = len(np.unique(sample.buyer_index[train]))
    sizes = {"buyer_id_xf": 151, "city_xf": 40, "product_id_xf": 81, "category_xf": 30}
    with pytest.raises(ValueError, match=rf"{buyers} distinct queries × 80 candidates = "
                                         rf"{buyers * 80:,} scores, over "
                                         r"model.posterior.max_cells 10,000"):
        read_train_rows(batches, FEATURES, sizes, corpus, PosteriorConfig(max_cells=10_000))


@pytest.mark.parametrize(("values", "message"), [
    ({"type": "ranking", "fit": "posterior"}, "posterior fits a retrieval model, not ranking"),
    ({"type": "retrieval", "fit": "posterior", "query_tower": [LayerConfig(units=4)]},
     "posterior needs linear towers"),
    ({"type": "retrieval", "fit": "posterior", "posterior": {"steps": 100, "burn_in": 100}},
     "burn_in 100 leaves none of the 100 steps"),
    ({"type": "retrieval", "fit": "annealing"}, "'sgd' or 'posterior'"),
])
def test_a_posterior_fit_the_model_cannot_take_is_refused_by_name(values, message):
    with pytest.raises(ValidationError, match=message):
        ModelConfig.model_validate(values)


def test_a_rating_needs_its_scale_and_a_count_has_no_top():
    with pytest.raises(ValidationError, match="a rating needs high > low"):
        FeedbackFeature(column="rating", kind="rating", low=1.0)
    with pytest.raises(ValidationError, match="a count has no high end"):
        FeedbackFeature(column="quantity", kind="count", high=9.0)


def test_rows_with_the_same_query_features_share_one_query():
    """Distinct queries are distinct combinations of every query column, sparse ids included
    (so a row's words make it another query), and each row counts its own choice."""
    features = FeatureConfig(
        query=[CategoricalFeature(name="buyer_id", embedding_dim=4),
               TextFeature(name="words", hash_buckets=9, embedding_dim=4)],
        candidate=[CategoricalFeature(name="product_id", embedding_dim=4)])
    sizes = {"buyer_id_xf": 3, "words_xf": 9, "product_id_xf": 4}
    batch = {"buyer_id_xf": tf.constant([0, 0, 1, 0, 1]),
             "words_xf": tf.ragged.constant([[2, 5], [2, 5], [2, 5], [5], []], tf.int64),
             "product_id_xf": tf.constant([0, 1, 1, 2, 3])}  # 3 is the OOV id
    rows = read_train_rows([batch], features, sizes, {"product_id_xf": tf.constant([0, 1, 2])},
                           PosteriorConfig())
    # the OOV row is dropped, and its query with it; rows 0 and 1 are one query
    assert rows.num_queries == 3 and rows.num_candidates == 3
    assert len(rows.row_query) == 4
    assert rows.row_query[0] == rows.row_query[1]
    assert len(set(rows.row_query[[0, 2, 3]].tolist())) == 3
    assert rows.row_candidate.tolist() == [0, 1, 1, 2]


def test_a_diverging_chain_starts_again_with_half_the_step_then_samples_right():
    """Steps 2.5 times too long for the stiffest coordinates make the chain run away; it is
    caught, started again with half the step, and then draws the right variances."""
    curvature = np.geomspace(1.0, 1000.0, 20)
    moments, restarts, messages = np.zeros((2, curvature.size)), [], []

    def on_state(step, value, x):
        if step == 0:
            moments[:] = 0.0
            restarts.append(step)
        elif step >= 500:
            moments[0] += x
            moments[1] += x**2

    used = posterior.stable_langevin(
        lambda x: (0.5 * np.sum(curvature * x**2), curvature * x), np.zeros(curvature.size),
        50.0 / curvature, step_size=0.05, steps=20_000, rng=np.random.default_rng(0),
        on_state=on_state, restartable=lambda: True, log=messages.append)
    assert used == 0.025 and len(restarts) == 2
    assert messages == [messages[0]] and "diverged at step" in messages[0]
    assert "starting again from the warm start with 0.025" in messages[0]
    ratio = (moments[1] / 19_499 - (moments[0] / 19_499) ** 2) * curvature
    # unadjusted Langevin at ε·M⁻¹·h = 1.25 is stable and over-disperses by
    # 2·1.25 / (1 − (1 − 1.25)²) = 2.67: the point is that it no longer runs away
    assert ratio.mean() == pytest.approx(2.5 / (1 - 0.25**2), rel=0.1)


def test_a_chain_that_diverges_after_its_first_record_fails_naming_the_step():
    curvature = np.full(5, 10.0)
    with pytest.raises(ValueError, match=r"the Langevin chain diverged at step \d+ with step "
                                         r"size 0.5; lower model.posterior.step_size"):
        posterior.stable_langevin(
            lambda x: (0.5 * np.sum(curvature * x**2), curvature * x), np.ones(5),
            np.full(5, 1.0), step_size=0.5, steps=100, rng=np.random.default_rng(0),
            on_state=lambda *_: None, restartable=lambda: False, log=print)
