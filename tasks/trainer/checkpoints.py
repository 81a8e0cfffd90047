"""Epoch checkpoints on shared storage, so a preempted Trainer pod resumes where it stopped.

`run_fn` attaches `EpochCheckpoint` when the platform gives it a checkpoint directory (a
Trainer running as its own flow run, which Kubernetes may evict). After every epoch it saves
the model's and the optimizer's variables with `tf.train.CheckpointManager` (which writes
its `checkpoint` index file last, so a half-written checkpoint is never the latest) and a
copy of the epoch records so far. `restore` loads the latest one and tells `fit` which
epoch to start from; the restored epoch records are written back beside the new model, so
the finished model's record lists every epoch exactly once.
"""

from __future__ import annotations

import logging

import tensorflow as tf

from retrain.domain.refs import EpochMetrics
from tasks.trainer import epochs as epoch_records

logger = logging.getLogger("retrain.trainer")
PREFIX = "epoch"


def _records_path(directory: str, epoch: int) -> str:
    return f"{directory.rstrip('/')}/{PREFIX}-{epoch}.epochs.jsonl"


class EpochCheckpoint(tf.keras.callbacks.Callback):
    """Saves variables and epoch records after each epoch (after the EpochReporter)."""

    def __init__(self, manager: tf.train.CheckpointManager, model_run_dir: str):
        super().__init__()
        self._manager = manager
        self._model_run_dir = model_run_dir

    def on_epoch_end(self, epoch, logs=None):
        """Records first, variables second: the index names only complete checkpoints."""
        number = epoch + 1
        records = epoch_records.read_epochs(self._model_run_dir)
        tf.io.gfile.makedirs(self._manager.directory)
        with tf.io.gfile.GFile(_records_path(self._manager.directory, number), "w") as handle:
            handle.write("".join(r.model_dump_json() + "\n" for r in records if r.epoch <= number))
        self._manager.save(checkpoint_number=number)
        logger.info("checkpoint after epoch %d: %s", number, self._manager.latest_checkpoint)


def manager_for(directory: str, model: tf.keras.Model) -> tf.train.CheckpointManager:
    """A manager over the model's and its optimizer's variables (the last two kept)."""
    checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    return tf.train.CheckpointManager(checkpoint, directory, max_to_keep=2,
                                      checkpoint_name=PREFIX)


def restore(manager: tf.train.CheckpointManager, model_run_dir: str) -> int:
    """Load the latest checkpoint, if any; returns the epochs it had finished (0 if none)."""
    latest = manager.latest_checkpoint
    if not latest:
        return 0
    epoch = int(latest.rsplit("-", 1)[1])
    manager.checkpoint.restore(latest).expect_partial()
    path = _records_path(manager.directory, epoch)
    records: list[EpochMetrics] = []
    if tf.io.gfile.exists(path):
        with tf.io.gfile.GFile(path, "r") as handle:
            records = [EpochMetrics.model_validate_json(line) for line in handle if line.strip()]
    epoch_records.write_all(records, model_run_dir)
    logger.info("resuming after epoch %d from %s", epoch, latest)
    return epoch
