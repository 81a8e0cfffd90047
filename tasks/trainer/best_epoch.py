"""Keep the best epoch: the model exported is the one of the epoch whose validation metric was
best, not the last one's (validation recall often peaks an epoch or two before the end).

`BestEpoch` watches one metric of each epoch's logs (after RecallCallback added recall@K),
keeps a copy of the weights whenever it improves and puts the best copy back when training
ends. With a checkpoint directory (a Trainer that Kubernetes may preempt) the best weights
and their epoch are also written there, so a Trainer resumed in a new pod still exports the
best epoch even when it came before the preemption.
"""

from __future__ import annotations

import json
import logging
import math

from retrain.adapters.tfx import prepare_tf_environment
from retrain.domain.evaluation import higher_is_better

prepare_tf_environment()  # Keras 2 (tf-keras), as the run_fn and TFRS use, before TF loads

import tensorflow as tf  # noqa: E402

logger = logging.getLogger("retrain.trainer")
BEST = "best-epoch"


class BestEpoch(tf.keras.callbacks.Callback):
    """Tracks `monitor` per epoch; restores the best epoch's weights at the end of `fit`."""

    def __init__(self, monitor: str, store_dir: str | None = None):
        super().__init__()
        self.monitor = monitor
        self.higher = higher_is_better(monitor.removeprefix("val_"), [])
        self.best_epoch: int | None = None
        self.best_value: float | None = None
        self.last_epoch = 0
        self._weights: list | None = None
        self._store = f"{store_dir.rstrip('/')}/{BEST}" if store_dir else None
        self._warned = False
        if self._store and tf.io.gfile.exists(f"{self._store}.json"):
            with tf.io.gfile.GFile(f"{self._store}.json", "r") as handle:
                saved = json.load(handle)
            self.best_epoch, self.best_value = saved["epoch"], saved["value"]

    def _better(self, value: float) -> bool:
        if self.best_value is None:
            return True
        return value > self.best_value if self.higher else value < self.best_value

    def on_epoch_end(self, epoch, logs=None):
        """Keep this epoch's weights if its metric is the best so far."""
        self.last_epoch = epoch + 1
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(float(value)):
            if not self._warned:
                logger.warning("best epoch: no %s in the epoch logs (%s); the last epoch is "
                               "kept", self.monitor, ", ".join(sorted(logs or {})) or "none")
                self._warned = True
            return
        if not self._better(float(value)):
            return
        self.best_epoch, self.best_value = epoch + 1, float(value)
        self._weights = self.model.get_weights()
        if self._store:
            tf.train.Checkpoint(model=self.model).write(self._store)
            with tf.io.gfile.GFile(f"{self._store}.json", "w") as handle:
                json.dump({"epoch": self.best_epoch, "value": self.best_value}, handle)

    def on_train_end(self, logs=None):
        """Put the best epoch's weights back (from memory, or from the checkpoint directory
        when the best epoch was trained by an earlier pod)."""
        if self.best_epoch is None or self.best_epoch == self.last_epoch:
            return
        if self._weights is not None:
            self.model.set_weights(self._weights)
        elif self._store:
            tf.train.Checkpoint(model=self.model).read(self._store).expect_partial()
        else:
            return
        logger.info("keeping epoch %d of %d: best %s %.4f", self.best_epoch, self.last_epoch,
                    self.monitor, self.best_value)

    @property
    def kept_epoch(self) -> int:
        """The epoch whose weights the model has after `fit` (the last, if none was better)."""
        return self.best_epoch or self.last_epoch
