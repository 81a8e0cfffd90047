"""The library `run_fn`: train the TFRS model described by the run's config, then export it.

TFX's GenericExecutor calls `tasks.trainer.run_fn.run_fn(fn_args)` with
`fn_args.custom_config` = `RecommenderSpec` as JSON. Nothing here is generated: the towers
and the model come from `tasks.trainer.models`, the export from `tasks.trainer.export`.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx_bsl.public import tfxio

from tasks.evaluator.metrics import RecallAccumulator
from retrain.domain.features import FeatureConfig, XfColumn
from retrain.domain.recommender import RECALL_KS, FitMethod, RecommenderSpec
from retrain.domain.refs import EpochMetrics
from tasks.trainer import checkpoints
from tasks.trainer.best_epoch import BestEpoch
from tasks.trainer import epochs as epoch_records
from tasks.trainer.export import export_recommender
from tasks.trainer.models import build_model, choose_strategy, input_sizes, make_optimizer
from tasks.trainer.posterior_towers import read_train_rows, train_posterior
from tasks.trainer.towers import column_values

logger = logging.getLogger("retrain.trainer")


@dataclass
class Corpus:
    """Every candidate in the candidate-id vocabulary, with its transformed features."""

    ids: np.ndarray
    """(n,) bytes: raw candidate ids; row i has vocabulary index i."""
    features: dict[str, tf.Tensor]
    """Candidate-tower xf columns, one row per candidate (ragged for sparse ids)."""
    probability: np.ndarray
    """(n,) share of train rows with this candidate (logQ correction)."""


def _dataset(fn_args, files, schema, batch_size: int, shuffle: bool, seed: int | None,
             buffer: int, raw: tft.TFTransformOutput | None = None) -> tf.data.Dataset:
    if raw is not None:
        return raw_dataset(files, raw, batch_size, shuffle, seed, buffer)
    options = tfxio.TensorFlowDatasetOptions(
        batch_size=batch_size,
        num_epochs=1,
        shuffle=shuffle and buffer > 0,
        shuffle_buffer_size=max(buffer, 1),
        shuffle_seed=seed,
    )
    return fn_args.data_accessor.tf_dataset_factory(files, options, schema)


def raw_dataset(files, tft_output: tft.TFTransformOutput, batch_size: int, shuffle: bool,
                seed: int | None, buffer: int) -> tf.data.Dataset:
    """Raw tf.Examples, transformed in the input pipeline by the Transform graph.

    Streaming runs materialize no transformed examples: each batch is parsed with the raw
    feature spec and passed through `transform_features_layer()`, giving the same features
    TFXIO would read from materialized ones. Shards are interleaved (and shuffled) so that
    a batch mixes rows from across the input, not one file's stretch of it.
    """
    files = sorted(path for pattern in files for path in tf.io.gfile.glob(pattern))
    if not files:
        raise ValueError("the Trainer's examples hold no files")
    compression = "GZIP" if files and files[0].endswith(".gz") else None
    names = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        names = names.shuffle(len(files), seed=seed)
    records = names.interleave(
        lambda name: tf.data.TFRecordDataset(name, compression_type=compression),
        cycle_length=max(1, min(len(files), 16)), block_length=64,
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=seed is not None or not shuffle,
    )
    if shuffle and buffer > 0:
        records = records.shuffle(buffer, seed=seed)
    layer = tft_output.transform_features_layer()
    spec = tft_output.raw_feature_spec()
    return records.batch(batch_size).map(
        lambda serialized: layer(tf.io.parse_example(serialized, spec)),
        num_parallel_calls=tf.data.AUTOTUNE,
    ).prefetch(tf.data.AUTOTUNE)


def build_corpus(dataset: tf.data.Dataset, features: FeatureConfig,
                 tft_output: tft.TFTransformOutput) -> Corpus:
    """One pass over the train split: each candidate's latest features and its frequency."""
    id_feature = features.candidate_id_feature
    vocabulary = np.array(tft_output.vocabulary_by_name(id_feature.name), dtype=object)
    size = len(vocabulary)
    id_column = id_feature.xf_name()
    columns: list[XfColumn] = features.xf_columns("candidate")
    counts = np.zeros(size, dtype=np.int64)
    dense: dict[str, np.ndarray] = {}
    sparse: dict[str, list] = {c.name: [np.zeros(0, np.int64)] * size
                               for c in columns if c.kind == "sparse_id"}
    for batch in dataset:
        index = column_values(batch[id_column])
        known = index < size  # OOV buckets are not candidates
        np.add.at(counts, index[known], 1)
        for column in columns:
            values = column_values(batch[column.name])
            if column.kind == "sparse_id":
                for row in np.flatnonzero(known):
                    sparse[column.name][index[row]] = values[row]
                continue
            if column.name not in dense:
                dense[column.name] = np.zeros(size, dtype=values.dtype)
            dense[column.name][index[known]] = values[known]
    if counts.sum() == 0:
        raise ValueError(f"the train split has no rows with a known {id_feature.name!r}")
    tensors: dict[str, tf.Tensor] = {name: tf.constant(v) for name, v in dense.items()}
    for name, rows in sparse.items():
        tensors[name] = tf.ragged.constant([list(r) for r in rows], dtype=tf.int64)
    return Corpus(ids=vocabulary, features=tensors, probability=counts / counts.sum())


class RecallCallback(tf.keras.callbacks.Callback):
    """Adds val_recall_at_K (exact, over the whole corpus) to each epoch's logs."""

    def __init__(self, eval_batches: list[dict], corpus: Corpus, id_column: str):
        super().__init__()
        self._batches = eval_batches
        self._corpus = corpus
        self._id_column = id_column

    def on_epoch_end(self, epoch, logs=None):
        """Embed the corpus and the eval sample with this epoch's weights; rank exactly."""
        if logs is not None:
            logs.update(validation_recall(self.model, self._batches, self._corpus,
                                          self._id_column))


def validation_recall(model, batches: list[dict], corpus: Corpus, id_column: str
                      ) -> dict[str, float]:
    """val_recall_at_K of `model`'s towers on the eval sample, exactly over the corpus."""
    candidates = model.candidate_tower(corpus.features).numpy()
    recall = RecallAccumulator(candidates, RECALL_KS)
    size = len(corpus.ids)
    for batch in batches:
        queries = model.query_tower(batch).numpy()
        target = column_values(batch[id_column]).astype(np.int64)
        recall.add(queries, np.where(target < size, target, -1))
    return {f"val_{name}": value for name, value in recall.result().items()
            if name != "example_count"}


class EpochReporter(tf.keras.callbacks.Callback):
    """Publishes each epoch's logs (after the other callbacks added theirs)."""

    def __init__(self, total_epochs: int, model_run_dir: str):
        super().__init__()
        self._total = total_epochs
        self._dir = model_run_dir
        self._started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        """Start the epoch's clock."""
        self._started = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        """Record the epoch: file beside the model, then the attached sinks."""
        metrics = {k: float(v) for k, v in (logs or {}).items() if np.isscalar(v)}
        record = epoch_records.EpochMetrics(
            epoch=epoch + 1, total_epochs=self._total,
            seconds=time.monotonic() - self._started, metrics=metrics,
        )
        logger.info("epoch %d/%d: %s", record.epoch, self._total,
                    ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items())))
        epoch_records.publish(record, self._dir)


def run_fn(fn_args) -> None:
    """Train the configured recommender; export serving, query, candidate models and index."""
    spec = RecommenderSpec.model_validate(fn_args.custom_config)
    params = spec.training
    if params.seed is not None:
        tf.keras.utils.set_random_seed(params.seed)
    strategy, info = choose_strategy(spec.gpu, logger)
    tft_output = tft.TFTransformOutput(fn_args.transform_output)
    schema = tft_output.transformed_metadata.schema
    id_column = spec.features.candidate_id_feature.xf_name()
    raw = tft_output if spec.raw_examples else None

    corpus = build_corpus(
        _dataset(fn_args, fn_args.train_files, schema, 4096, False, None, 0, raw),
        spec.features, tft_output,
    )
    logger.info("candidate corpus: %d candidates", len(corpus.ids))
    validation = None
    if params.epoch_eval_rows > 0:
        steps = math.ceil(params.epoch_eval_rows / params.batch_size)
        validation = _dataset(fn_args, fn_args.eval_files, schema, params.batch_size, False,
                              None, 0, raw).take(steps).cache()
    if spec.model.fit == FitMethod.POSTERIOR:
        _run_posterior(fn_args, spec, tft_output, corpus, schema, raw, validation, info)
        return
    train = _dataset(fn_args, fn_args.train_files, schema, params.batch_size, True,
                     params.seed, params.shuffle_buffer, raw)
    callbacks: list[tf.keras.callbacks.Callback] = []
    if validation is not None and spec.model.has_retrieval:
        callbacks.append(RecallCallback(list(validation), corpus, id_column))
    if params.early_stopping.enabled:
        stop = params.early_stopping
        callbacks.append(tf.keras.callbacks.EarlyStopping(
            monitor=stop.monitor, patience=stop.patience, min_delta=stop.min_delta,
            restore_best_weights=stop.restore_best_weights,
            mode="max" if "recall" in stop.monitor else "min",
        ))
    callbacks.append(EpochReporter(params.epochs, fn_args.model_run_dir))
    best = None
    if params.keep_best_epoch and validation is not None:
        best = BestEpoch(params.best_epoch_metric or spec.model.best_epoch_metric(),
                         spec.checkpoint_dir)
        callbacks.append(best)

    with strategy.scope():
        sizes = input_sizes(spec.features, tft_output.vocabulary_size_by_name)
        model = build_model(spec.model, spec.features, sizes, corpus.features, corpus.probability)
        model.compile(optimizer=make_optimizer(spec.model.optimizer, params.learning_rate))
    resumed_from = 0
    if spec.checkpoint_dir:
        # A preempted pod's successor picks up after the last finished epoch.
        manager = checkpoints.manager_for(spec.checkpoint_dir, model)
        with strategy.scope():
            # Weights exist since build_model; slots and the step counter must too, so
            # that every saved value has a variable to land in.
            model.optimizer.build(model.trainable_variables)
            resumed_from = checkpoints.restore(manager, fn_args.model_run_dir)
        callbacks.append(checkpoints.EpochCheckpoint(manager, fn_args.model_run_dir))
    history = model.fit(train, epochs=params.epochs, initial_epoch=resumed_from,
                        validation_data=validation, callbacks=callbacks, verbose=2)
    epochs_run = history.epoch[-1] + 1 if history.epoch else resumed_from

    export_recommender(
        model, spec, tft_output, corpus.ids, corpus.features,
        serving_dir=fn_args.serving_model_dir,
        model_dir=os.path.dirname(fn_args.serving_model_dir.rstrip("/")),
        training={"epochs_run": epochs_run, "resumed_from_epoch": resumed_from,
                  "optimizer_steps": int(model.optimizer.iterations.numpy()),
                  "strategy": info.strategy, "replicas": info.replicas,
                  "gpus_visible": list(info.gpus_visible),
                  "best_epoch": (best.kept_epoch if best else 0) or epochs_run,
                  "best_epoch_metric": best.monitor if best else None,
                  "best_epoch_value": best.best_value if best else None,
                  "fit": FitMethod.SGD.value},
    )


def _run_posterior(fn_args, spec: RecommenderSpec, tft_output: tft.TFTransformOutput,
                   corpus: Corpus, schema, raw, validation, info) -> None:
    """`model.fit: posterior`: sample the factor model on the whole train split, one
    training record per block of steps, and export the samples' towers."""
    if spec.checkpoint_dir:
        logger.info("posterior fit: no checkpoints; a resubmitted Trainer fits again")
    sizes = input_sizes(spec.features, tft_output.vocabulary_size_by_name)
    rows = read_train_rows(
        _dataset(fn_args, fn_args.train_files, schema, 4096, False, None, 0, raw),
        spec.features, sizes, corpus.features, spec.model.posterior)
    id_column = spec.features.candidate_id_feature.xf_name()
    batches = list(validation) if validation is not None else None
    validate = None if batches is None else (
        lambda model: validation_recall(model, batches, corpus, id_column))

    def record(metrics: EpochMetrics) -> None:
        logger.info("block %d/%d: %s", metrics.epoch, metrics.total_epochs,
                    ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.metrics.items())))
        epoch_records.publish(metrics, fn_args.model_run_dir)

    model = train_posterior(spec.model, spec.features, sizes, rows, spec.training.seed,
                            validate, record, logger.info)
    config = spec.model.posterior
    export_recommender(
        model, spec, tft_output, corpus.ids, corpus.features,
        serving_dir=fn_args.serving_model_dir,
        model_dir=os.path.dirname(fn_args.serving_model_dir.rstrip("/")),
        training={"epochs_run": config.records, "resumed_from_epoch": 0,
                  "optimizer_steps": config.steps, "strategy": info.strategy,
                  "replicas": info.replicas, "gpus_visible": list(info.gpus_visible),
                  "best_epoch": config.records, "best_epoch_metric": None,
                  "best_epoch_value": None, "fit": FitMethod.POSTERIOR.value,
                  "posterior_samples": config.samples,
                  "posterior_step_size": model.step_size,
                  "distinct_queries": rows.num_queries},
    )
