"""Towers, TFRS models, optimizers and strategy choice, on a tiny synthetic batch (CPU).

The batch has 64 rows where buyer i bought product i, so a working retrieval model learns
to score candidate i highest for query i.
"""

from __future__ import annotations

import logging
from unittest import mock

import numpy as np
import pytest

from retrain.domain.features import (
    CategoricalFeature,
    FeatureConfig,
    NumericFeature,
    TargetConfig,
    TextFeature,
    XfColumn,
)
from retrain.domain.recommender import GpuConfig, LayerConfig, ModelConfig, OptimizerConfig
from tasks.trainer.models import (
    RecommenderModel,
    Tower,
    build_model,
    choose_strategy,
    input_sizes,
    make_optimizer,
)
from tasks.trainer.towers import PooledEmbedding

import tensorflow as tf  # noqa: E402  (after tasks.trainer set the Keras 2 env)

ROWS = 64
VOCAB = {"buyer_id": ROWS, "product_id": ROWS}
FEATURES = FeatureConfig(
    query=[
        CategoricalFeature(name="buyer_id", embedding_dim=8),
        NumericFeature(name="age"),
        TextFeature(name="query_text", hash_buckets=50, embedding_dim=4),
    ],
    candidate=[
        CategoricalFeature(name="product_id", embedding_dim=8),
        NumericFeature(name="price", transform="bucketize", num_buckets=5),
        TextFeature(name="title", hash_buckets=50, embedding_dim=4),
    ],
    target=TargetConfig(column="rating"),
)
SMALL = dict(query_tower=[LayerConfig(units=16)], candidate_tower=[LayerConfig(units=16)],
             output_dim=8, ranking_head=[LayerConfig(units=8)])


@pytest.fixture(autouse=True)
def _seed():
    tf.keras.utils.set_random_seed(0)


def _ragged(rng: np.random.Generator, rows: int) -> tf.RaggedTensor:
    lengths = rng.integers(0, 4, rows)
    lengths[0] = 0  # at least one row without tokens
    values = rng.integers(0, 50, lengths.sum()).astype(np.int64)
    return tf.RaggedTensor.from_row_lengths(values, lengths)


def _batch(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    ids = np.arange(ROWS, dtype=np.int64)
    return {
        "buyer_id_xf": tf.constant(ids),
        "age_xf": tf.constant(rng.normal(size=ROWS).astype(np.float32)),
        "query_text_xf": _ragged(rng, ROWS).to_sparse(),
        "product_id_xf": tf.constant(ids.reshape(-1, 1)),
        "price_xf": tf.constant(ids % 5),
        "title_xf": _ragged(rng, ROWS).to_sparse(),  # tfxio's form of a VarLen feature
        "rating_xf": tf.constant((ids % 4).astype(np.float32)),
        "raw_note": tf.constant(["ignored"] * ROWS),
    }


BATCH = _batch()
# Row i is product i; text as ragged, the form the corpus is handed over in.
CORPUS = {"product_id_xf": tf.constant(np.arange(ROWS, dtype=np.int64)),
          "price_xf": BATCH["price_xf"],
          "title_xf": tf.RaggedTensor.from_sparse(BATCH["title_xf"])}
PROBABILITY = np.linspace(1.0, 3.0, ROWS) / np.linspace(1.0, 3.0, ROWS).sum()


def _sizes() -> dict[str, int]:
    return input_sizes(FEATURES, VOCAB.__getitem__)


def _model(type_: str, **overrides) -> RecommenderModel:
    config = ModelConfig(type=type_, **{**SMALL, **overrides})
    return build_model(config, FEATURES, _sizes(), CORPUS, PROBABILITY)


# Towers ----------------------------------------------------------------------------------
def test_input_sizes_use_size_or_vocabulary_plus_oov():
    asked = []
    sizes = input_sizes(FEATURES, lambda name: asked.append(name) or VOCAB[name])
    assert sizes == {"buyer_id_xf": 65, "query_text_xf": 50, "product_id_xf": 65,
                     "price_xf": 5, "title_xf": 50}
    assert asked == ["buyer_id", "product_id"]  # floats and fixed-size ids need no vocabulary


def test_tower_output_shape_and_input_forms():
    tower = Tower(FEATURES.xf_columns("candidate"), _sizes(), [LayerConfig(units=16)], 8,
                  name="candidate")
    out = tower(BATCH)
    assert out.shape == (ROWS, 8) and out.dtype == tf.float32
    # Sparse vs ragged text, [batch] vs [batch, 1] ids, no extra keys: same embeddings.
    other = {"product_id_xf": tf.reshape(BATCH["product_id_xf"], [-1]),
             "price_xf": tf.reshape(BATCH["price_xf"], [-1, 1]),
             "title_xf": CORPUS["title_xf"]}
    np.testing.assert_allclose(tower(other).numpy(), out.numpy(), rtol=1e-6)
    with pytest.raises(KeyError, match="title_xf"):
        tower({"product_id_xf": other["product_id_xf"], "price_xf": other["price_xf"]})


def test_tower_reads_only_its_own_columns():
    tower = Tower(FEATURES.xf_columns("query"), _sizes(), [LayerConfig(units=16)], 4, name="q")
    base = tower(BATCH).numpy()
    changed = dict(BATCH, product_id_xf=BATCH["product_id_xf"][::-1],
                   rating_xf=BATCH["rating_xf"] + 9)
    np.testing.assert_allclose(tower(changed).numpy(), base, rtol=1e-6)
    moved = dict(BATCH, age_xf=BATCH["age_xf"] + 1.0)
    assert not np.allclose(tower(moved).numpy(), base)


def test_tower_layer_stack_follows_config():
    layers = [LayerConfig(units=16, activation="gelu", batch_norm=True, dropout=0.2),
              LayerConfig(units=8, activation="tanh")]
    tower = Tower(FEATURES.xf_columns("query"), _sizes(), layers, 6, name="q")
    tower(BATCH)
    stack = tower.mlp.layers
    kinds = [type(layer).__name__ for layer in stack]
    assert kinds == ["Dense", "BatchNormalization", "Activation", "Dropout",
                     "Dense", "Activation", "Dense"]
    units = [layer.units for layer in stack if isinstance(layer, tf.keras.layers.Dense)]
    assert units == [16, 8, 6]
    activations = [layer.activation.__name__ for layer in stack
                   if isinstance(layer, tf.keras.layers.Activation)]
    assert activations == ["gelu", "tanh"]
    assert stack[3].rate == pytest.approx(0.2)
    assert stack[-1].activation.__name__ == "linear"
    embeddings = {name: layer.output_dim for name, layer in tower.embeddings.items()}
    assert embeddings == {"buyer_id_xf": 8, "query_text_xf": 4}  # the float has none


def test_pooled_embedding_is_the_mean_and_zero_for_empty_rows():
    layer = PooledEmbedding(10, 3)
    ids = tf.ragged.constant([[1, 2, 2], [], [7]], dtype=tf.int64)
    out = layer(ids).numpy()
    table = layer.embeddings.numpy()
    np.testing.assert_allclose(out[0], table[[1, 2, 2]].mean(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(out[1], np.zeros(3))
    np.testing.assert_allclose(out[2], table[7], rtol=1e-6)


# Models ----------------------------------------------------------------------------------
@pytest.mark.parametrize("type_", ["retrieval", "ranking", "multitask"])
def test_training_steps_reduce_the_loss(type_):
    model = _model(type_)
    model.compile(optimizer=make_optimizer(OptimizerConfig(name="adam"), 0.05))
    before = float(model.compute_loss(BATCH))
    for _ in range(20):
        model.train_step(BATCH)
    assert float(model.compute_loss(BATCH)) < 0.7 * before
    if model.config.has_retrieval:  # buyer i now prefers product i
        scores = tf.matmul(model.query_tower(BATCH), model.candidate_tower(BATCH),
                           transpose_b=True)
        top1 = np.argmax(scores.numpy(), axis=1)
        assert (top1 == np.arange(ROWS)).mean() > 0.5
    if model.config.has_ranking:
        rating = model.predict_rating(BATCH)
        assert rating.shape == (ROWS,) and rating.dtype == tf.float32
        assert {m.name for m in model.metrics} >= {"rmse", "mae"}


def test_ranking_loss_is_the_mean_squared_error():
    model = _model("ranking")
    errors = model.predict_rating(BATCH) - BATCH["rating_xf"]
    expected = float(tf.reduce_mean(tf.square(errors)))
    assert float(model.compute_loss(BATCH)) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="predicts no rating"):
        _model("retrieval").predict_rating(BATCH)


def test_multitask_loss_is_the_weighted_sum_of_the_task_losses():
    losses = {}
    for weights in [(1.0, 0.0), (0.0, 1.0), (0.5, 2.0)]:
        tf.keras.utils.set_random_seed(0)
        model = _model("multitask", retrieval_weight=weights[0], ranking_weight=weights[1])
        losses[weights] = (float(model.compute_loss(BATCH)),
                           {k: float(v) for k, v in model.task_losses(BATCH).items()})
    retrieval = losses[(1.0, 0.0)][1]["retrieval"]
    ranking = losses[(1.0, 0.0)][1]["ranking"]
    assert retrieval != pytest.approx(ranking)
    assert losses[(1.0, 0.0)][0] == pytest.approx(retrieval, rel=1e-6)
    assert losses[(0.0, 1.0)][0] == pytest.approx(ranking, rel=1e-6)
    assert losses[(0.5, 2.0)][0] == pytest.approx(0.5 * retrieval + 2.0 * ranking, rel=1e-6)


def _spy_retrieval(model):
    return mock.patch.object(model.retrieval_task, "call", wraps=model.retrieval_task.call)


def test_sampled_negatives_are_appended_and_raise_the_loss():
    tf.keras.utils.set_random_seed(1)
    plain = float(_model("retrieval").compute_loss(BATCH))
    tf.keras.utils.set_random_seed(1)
    model = _model("retrieval", sampled_negatives=16)
    with _spy_retrieval(model) as spy:
        loss = float(model.compute_loss(BATCH))
    query, candidates = spy.call_args.args[:2]
    ids = spy.call_args.kwargs["candidate_ids"].numpy()
    assert query.shape[0] == ROWS and candidates.shape[0] == ROWS + 16
    np.testing.assert_array_equal(ids[:ROWS], np.arange(ROWS))
    assert ids[ROWS:].min() >= 0 and ids[ROWS:].max() < ROWS
    # Same weights, more negatives in every softmax denominator.
    assert loss > plain


def test_logq_correction_uses_the_mixture_probability():
    model = _model("retrieval", sampled_negatives=16, logq_correction=True)
    with _spy_retrieval(model) as spy:
        corrected = float(model.compute_loss(BATCH))
    ids = spy.call_args.kwargs["candidate_ids"].numpy()
    probability = spy.call_args.kwargs["candidate_sampling_probability"].numpy()
    expected = (ROWS * PROBABILITY[ids] + 16 / ROWS) / (ROWS + 16)
    np.testing.assert_allclose(probability, expected, rtol=1e-5)
    tf.keras.utils.set_random_seed(0)
    uncorrected = float(_model("retrieval", sampled_negatives=16).compute_loss(BATCH))
    assert corrected != pytest.approx(uncorrected)
    # Without sampled negatives the probability is the frequency share itself.
    model = _model("retrieval", logq_correction=True)
    with _spy_retrieval(model) as spy:
        model.compute_loss(BATCH)
    np.testing.assert_allclose(spy.call_args.kwargs["candidate_sampling_probability"].numpy(),
                               PROBABILITY, rtol=1e-6)


def test_embedding_l2_adds_the_squared_lengths_of_the_batch_embeddings_in_training():
    model = _model("retrieval", embedding_l2=1.0)
    query, candidate = model.query_tower(BATCH), model.candidate_tower(BATCH)
    penalty = float(tf.reduce_sum(tf.square(query)) + tf.reduce_sum(tf.square(candidate)))
    plain = float(model.compute_loss(BATCH, training=False))
    assert float(model.compute_loss(BATCH, training=True)) == pytest.approx(plain + penalty,
                                                                            rel=1e-5)
    assert penalty > 0.05 * plain  # large enough to tell apart
    # Training with it shrinks the embeddings: the same steps without it leave them longer.
    norms = {}
    for l2 in (0.0, 0.1):
        tf.keras.utils.set_random_seed(0)
        model = _model("retrieval", embedding_l2=l2)
        model.compile(optimizer=make_optimizer(OptimizerConfig(), 0.1))
        for _ in range(10):
            model.train_step(BATCH)
        norms[l2] = float(tf.reduce_mean(tf.norm(model.query_tower(BATCH), axis=1)))
    assert norms[0.1] < norms[0.0]


def test_accidental_hits_are_not_negatives():
    model = _model("retrieval")
    same = dict(BATCH, product_id_xf=tf.zeros([ROWS, 1], tf.int64))
    # Every other candidate is the positive's own product: nothing is left to push away.
    assert float(model.compute_loss(same)) == pytest.approx(0.0, abs=1e-3)
    assert float(model.compute_loss(BATCH)) > 1.0


def test_multitask_with_negatives_and_logq_fits_under_a_strategy():
    # Any non-default strategy (OneDeviceStrategy is what one GPU gets) refuses Keras
    # losses with AUTO reduction outside compile(); this guards the ranking loss.
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    config = ModelConfig(type="multitask", sampled_negatives=8, logq_correction=True,
                         query_tower=[LayerConfig(units=16, batch_norm=True, dropout=0.1)],
                         output_dim=8, ranking_head=[LayerConfig(units=8)],
                         optimizer=OptimizerConfig(clipnorm=1.0))
    with strategy.scope():
        model = build_model(config, FEATURES, _sizes(), CORPUS, PROBABILITY)
        model.compile(optimizer=make_optimizer(config.optimizer, 0.1))
        assert all(isinstance(v, tf.Variable) for v in model.trainable_variables)
        assert len(model.trainable_variables) > 10  # created in the scope, before fit
    history = model.fit(tf.data.Dataset.from_tensors(BATCH).repeat(5), epochs=2, verbose=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    assert history.history["rmse"][-1] < history.history["rmse"][0]


def test_build_model_refuses_missing_inputs():
    sizes = _sizes()
    with pytest.raises(ValueError, match="candidate_corpus"):
        build_model(ModelConfig(type="retrieval", sampled_negatives=4), FEATURES, sizes)
    with pytest.raises(ValueError, match="candidate_probability"):
        build_model(ModelConfig(type="retrieval", logq_correction=True), FEATURES, sizes, CORPUS)
    with pytest.raises(ValueError, match="rows"):
        build_model(ModelConfig(type="retrieval", logq_correction=True), FEATURES, sizes,
                    CORPUS, PROBABILITY[:10])
    no_target = FEATURES.model_copy(update={"target": None})
    with pytest.raises(ValueError, match="features.target"):
        build_model(ModelConfig(type="ranking"), no_target, sizes)


def test_make_optimizer_follows_config():
    adam = make_optimizer(OptimizerConfig(name="adam", clipnorm=2.0), 0.01)
    assert isinstance(adam, tf.keras.optimizers.Adam)
    assert adam.clipnorm == 2.0 and float(adam.learning_rate) == pytest.approx(0.01)
    sgd = make_optimizer(OptimizerConfig(name="sgd"), 0.5)
    assert isinstance(sgd, tf.keras.optimizers.SGD) and sgd.clipnorm is None
    assert isinstance(make_optimizer(OptimizerConfig(), 0.1), tf.keras.optimizers.Adagrad)


# Strategy --------------------------------------------------------------------------------
def test_strategy_without_gpus(caplog):
    caplog.set_level(logging.INFO, logger="retrain.trainer")
    strategy, info = choose_strategy(GpuConfig(enabled=False))
    assert strategy is tf.distribute.get_strategy()
    assert info.replicas == 1 and info.gpus_visible == []
    assert info.strategy == type(strategy).__name__
    assert "replica" in caplog.text
    with pytest.raises(RuntimeError, match="none is visible"):
        choose_strategy(GpuConfig(enabled=True, count=2))


class _FakeStrategy:
    def __init__(self, devices):
        self.devices = devices
        self.num_replicas_in_sync = len(devices) if isinstance(devices, list) else 1


class MirroredStrategy(_FakeStrategy):
    def __init__(self, devices):
        super().__init__(devices)


class OneDeviceStrategy(_FakeStrategy):
    pass


@pytest.fixture
def two_gpus(monkeypatch):
    gpus = [tf.config.PhysicalDevice(f"/physical_device:GPU:{i}", "GPU") for i in range(2)]
    monkeypatch.setattr(tf.config, "list_physical_devices",
                        lambda kind=None: gpus if kind == "GPU" else [])
    monkeypatch.setattr(tf.distribute, "MirroredStrategy", MirroredStrategy)
    monkeypatch.setattr(tf.distribute, "OneDeviceStrategy", OneDeviceStrategy)


def test_strategy_rules_with_gpus(two_gpus, caplog):
    caplog.set_level(logging.INFO, logger="retrain.trainer")
    strategy, info = choose_strategy(GpuConfig(enabled=True, count=4))
    assert strategy.devices == ["/gpu:0", "/gpu:1"]
    assert info.strategy == "MirroredStrategy" and info.replicas == 2
    assert "requested: 4, visible: 2" in caplog.text
    strategy, info = choose_strategy(GpuConfig(enabled=True, count=1))
    assert strategy.devices == "/gpu:0" and info.strategy == "OneDeviceStrategy"
    caplog.clear()
    strategy, info = choose_strategy(GpuConfig(enabled=False))
    assert strategy is tf.distribute.get_strategy() and len(info.gpus_visible) == 2
    assert "gpu.enabled is false" in caplog.text
