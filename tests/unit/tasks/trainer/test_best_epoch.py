"""Keeping the best epoch: a model whose validation metric peaks mid-training is exported with
that epoch's weights, also when a Trainer resumed in a new pod trained the later epochs."""

from __future__ import annotations

import numpy as np
import pytest

from retrain.domain.recommender import ModelConfig
from tasks.trainer.best_epoch import BestEpoch

import tensorflow as tf  # noqa: E402  (after tasks.trainer set the Keras 2 env)


class PlantedMetric(tf.keras.callbacks.Callback):
    """Writes a chosen validation value into each epoch's logs (as RecallCallback writes
    recall@K) and remembers the weights each epoch ended with."""

    def __init__(self, values: dict[int, float], name: str = "val_recall_at_100"):
        super().__init__()
        self.values, self.name, self.weights = values, name, {}

    def on_epoch_end(self, epoch, logs=None):
        logs[self.name] = self.values[epoch + 1]
        self.weights[epoch + 1] = [w.copy() for w in self.model.get_weights()]


def _model() -> tf.keras.Model:
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([tf.keras.Input(shape=(4,)), tf.keras.layers.Dense(1)])
    model.compile(optimizer=tf.keras.optimizers.SGD(0.1), loss="mse")
    return model


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    return x, x @ np.array([1.0, -2.0, 0.5, 3.0], dtype="float32")


def _same(a: list, b: list) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_the_epoch_where_validation_recall_peaked_is_the_one_kept():
    model, (x, y) = _model(), _data()
    planted = PlantedMetric({1: 0.30, 2: 0.52, 3: 0.49, 4: 0.47})
    best = BestEpoch("val_recall_at_100")
    model.fit(x, y, epochs=4, batch_size=16, verbose=0, callbacks=[planted, best])
    assert (best.kept_epoch, best.best_value) == (2, 0.52)
    assert _same(model.get_weights(), planted.weights[2])
    assert not _same(planted.weights[2], planted.weights[4]), "training moved the weights"


def test_for_an_error_metric_lower_is_better_and_a_last_best_epoch_changes_nothing():
    model, (x, y) = _model(), _data()
    planted = PlantedMetric({1: 1.4, 2: 1.1, 3: 0.9}, name="val_rmse")
    best = BestEpoch("val_rmse")
    model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[planted, best])
    assert best.kept_epoch == 3 and _same(model.get_weights(), planted.weights[3])


def test_a_missing_metric_keeps_the_last_epoch(caplog):
    model, (x, y) = _model(), _data()
    best = BestEpoch("val_recall_at_100")
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[best])
    assert best.best_epoch is None and best.kept_epoch == 2
    assert "no val_recall_at_100 in the epoch logs (loss)" in caplog.text


def test_a_resumed_trainer_exports_the_best_epoch_an_earlier_pod_trained(tmp_path):
    (x, y), store = _data(), str(tmp_path / "checkpoints")
    first = _model()
    planted = PlantedMetric({1: 0.40, 2: 0.55, 3: 0.50, 4: 0.45})
    # The first pod trains epochs 1-2 (best: 2), then is preempted.
    first.fit(x, y, epochs=2, batch_size=16, verbose=0,
              callbacks=[planted, BestEpoch("val_recall_at_100", store)])
    # The next pod resumes after epoch 2 with a model of its own and trains epochs 3-4.
    resumed = _model()
    resumed.set_weights(planted.weights[2])
    best = BestEpoch("val_recall_at_100", store)
    resumed.fit(x, y, epochs=4, initial_epoch=2, batch_size=16, verbose=0,
                callbacks=[planted, best])
    assert (best.kept_epoch, best.best_value) == (2, 0.55)
    assert _same(resumed.get_weights(), planted.weights[2])


@pytest.mark.parametrize(("model_type", "metric"), [
    ("retrieval", "val_recall_at_100"), ("multitask", "val_recall_at_100"),
    ("ranking", "val_rmse")])
def test_default_metric_per_model_type(model_type, metric):
    assert ModelConfig(type=model_type).best_epoch_metric() == metric
