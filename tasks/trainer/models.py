"""TFRS models, optimizers and the distribution strategy, built from typed config.

`run_fn` calls, in order: `choose_strategy(gpu)`, then inside `strategy.scope()`:
`build_model(...)` and `make_optimizer(...)`. Towers live in `tasks.trainer.towers`.

Sampled negatives and logQ correction (retrieval):
- `sampled_negatives=S > 0`: each step draws S rows of the candidate corpus uniformly (with
  replacement), runs them through the candidate tower in the same pass as the batch's
  positives and appends them as extra candidates; their candidate id is their corpus row.
- `logq_correction`: the candidate set of a step (B positives + S negatives) is one draw
  from the mixture "B from the data distribution p, S uniform", so every candidate j gets
  q_j = (B * p_j + S / N) / (B + S), looked up by its id (N = corpus size). With S = 0 this
  is p_j. Ids beyond `candidate_probability` (OOV rows) get 1 / len(candidate_probability).
- Accidental hits (a negative with the positive's id) are always removed.
- `embedding_l2`: λ · (Σ‖query‖² + Σ‖positive candidate‖²) over the batch is added to the
  retrieval loss in training (summed over the batch, as the loss is).
"""

from __future__ import annotations

import logging
from typing import Mapping

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from retrain.adapters.tfx import prepare_tf_environment

# tensorflow_recommenders needs Keras 2: the env must be set before TensorFlow is imported.
prepare_tf_environment()

import tensorflow as tf  # noqa: E402
import tensorflow_recommenders as tfrs  # noqa: E402

from retrain.domain.features import FeatureConfig  # noqa: E402
from retrain.domain.recommender import GpuConfig, ModelConfig, OptimizerConfig  # noqa: E402
from tasks.trainer.towers import Tower, dense_stack, input_sizes  # noqa: E402

__all__ = [
    "RecommenderModel",
    "StrategyInfo",
    "Tower",
    "build_model",
    "choose_strategy",
    "input_sizes",
    "make_optimizer",
]

LOGGER = logging.getLogger("retrain.trainer")


class _Corpus:
    """Candidate-tower columns of every candidate (row i = candidate id i).

    A plain object on purpose: Keras does not track it, so the corpus is neither a weight
    nor part of checkpoints.
    """

    def __init__(self, columns: Mapping[str, tf.Tensor | tf.RaggedTensor | tf.SparseTensor]):
        self.columns = {}
        for name, value in columns.items():
            if isinstance(value, tf.SparseTensor):
                value = tf.RaggedTensor.from_sparse(value)
            elif not isinstance(value, tf.RaggedTensor):
                value = tf.convert_to_tensor(value)
            self.columns[name] = value
        rows = {name: int(value.shape[0]) for name, value in self.columns.items()}
        if len(set(rows.values())) != 1:
            raise ValueError(f"candidate_corpus columns differ in row count: {rows}")
        self.size = next(iter(rows.values()))

    def rows(self, indices: tf.Tensor) -> dict[str, tf.Tensor | tf.RaggedTensor]:
        """The corpus rows at `indices`."""
        return {name: tf.gather(value, indices) for name, value in self.columns.items()}


def _concat_rows(first, second):
    """Stack two batches of one column (dense [n] / [n, 1], sparse or ragged)."""
    if isinstance(first, (tf.SparseTensor, tf.RaggedTensor)) or isinstance(
        second, (tf.SparseTensor, tf.RaggedTensor)
    ):
        parts = [
            tf.RaggedTensor.from_sparse(v) if isinstance(v, tf.SparseTensor)
            else v if isinstance(v, tf.RaggedTensor)
            else tf.RaggedTensor.from_tensor(tf.reshape(v, [tf.shape(v)[0], -1]))
            for v in (first, second)
        ]
        return tf.concat([tf.cast(p, tf.int64) for p in parts], axis=0)
    second = tf.cast(second, first.dtype)
    return tf.concat([tf.reshape(first, [-1]), tf.reshape(second, [-1])], axis=0)


class RecommenderModel(tfrs.models.Model):
    """Two towers with a retrieval task, a ranking head, or both (`model.type`).

    Use `build_model`; it checks the inputs each mode needs.
    """

    def __init__(
        self,
        model: ModelConfig,
        features: FeatureConfig,
        sizes: Mapping[str, int],
        candidate_corpus: Mapping[str, tf.Tensor] | None = None,
        candidate_probability: np.ndarray | None = None,
    ):
        super().__init__(name=f"{model.type}_model")
        self.config = model
        self.query_tower = Tower(features.xf_columns("query"), sizes, model.query_tower,
                                 model.output_dim, name="query_tower")
        self.candidate_tower = Tower(features.xf_columns("candidate"), sizes,
                                     model.candidate_tower, model.output_dim,
                                     name="candidate_tower")
        self.candidate_id_name = features.candidate_id_feature.xf_name()
        self.corpus = _Corpus(candidate_corpus) if candidate_corpus is not None else None
        self._probability = None
        if candidate_probability is not None:
            probability = np.asarray(candidate_probability, dtype=np.float32).reshape(-1)
            # One extra entry for ids beyond the table (OOV): uniform.
            self._probability = tf.constant(
                np.append(probability, 1.0 / len(probability)), dtype=tf.float32)
        self.retrieval_task = None
        self.ranking_task = None
        self.rating_head = None
        if model.has_retrieval:
            self.retrieval_task = tfrs.tasks.Retrieval(remove_accidental_hits=True)
        if model.has_ranking:
            self.target_name = features.target.xf_name
            self.rating_head = tf.keras.Sequential(
                [*dense_stack(model.ranking_head, "head"), tf.keras.layers.Dense(1, name="rating")],
                name="rating_head",
            )
            # SUM, scaled in _ranking_loss: AUTO reduction raises under any tf.distribute
            # strategy outside Model.compile, and a per-replica mean would be summed over
            # replicas by the optimizer.
            self.ranking_task = tfrs.tasks.Ranking(
                loss=tf.keras.losses.MeanSquaredError(reduction=tf.keras.losses.Reduction.SUM),
                metrics=[tf.keras.metrics.RootMeanSquaredError(name="rmse"),
                         tf.keras.metrics.MeanAbsoluteError(name="mae")],
            )
        # Weights are created here, so they live in the scope build_model was called in.
        self.query_tower.create_variables()
        self.candidate_tower.create_variables()
        if self.rating_head is not None:
            self.rating_head(tf.zeros([1, 2 * model.output_dim]), training=False)

    def _rating(self, query: tf.Tensor, candidate: tf.Tensor, training) -> tf.Tensor:
        return self.rating_head(tf.concat([query, candidate], axis=1), training=training)

    def predict_rating(self, features: Mapping[str, tf.Tensor], training=False) -> tf.Tensor:
        """[batch] float32 predicted target, in transformed target units."""
        if self.rating_head is None:
            raise ValueError(f"a {self.config.type} model predicts no rating")
        query = self.query_tower(features, training=training)
        candidate = self.candidate_tower(features, training=training)
        return tf.reshape(self._rating(query, candidate, training), [-1])

    def _candidates(self, features, training):
        """Candidate embeddings and ids: the batch's positives, then sampled negatives."""
        ids = tf.reshape(tf.cast(features[self.candidate_id_name], tf.int64), [-1])
        negatives = self.config.sampled_negatives if self.retrieval_task is not None else 0
        if not negatives:
            return self.candidate_tower(features, training=training), ids
        sampled = tf.random.uniform([negatives], maxval=self.corpus.size, dtype=tf.int64)
        # One tower pass over positives and negatives: batch-norm statistics see both once.
        rows = self.corpus.rows(sampled)
        inputs = {c.name: _concat_rows(features[c.name], rows[c.name])
                  for c in self.candidate_tower.columns}
        return self.candidate_tower(inputs, training=training), tf.concat([ids, sampled], 0)

    def sampling_probability(self, candidate_ids: tf.Tensor, batch_size) -> tf.Tensor:
        """q_j = (B p_j + S / N) / (B + S) for each candidate id (see the module docstring)."""
        table_size = tf.shape(self._probability, out_type=tf.int64)[0] - 1
        probability = tf.gather(self._probability, tf.minimum(candidate_ids, table_size))
        negatives = self.config.sampled_negatives
        if not negatives:
            return probability
        batch = tf.cast(batch_size, tf.float32)
        return (batch * probability + negatives / self.corpus.size) / (batch + negatives)

    def _ranking_loss(self, query, candidate, features, training) -> tf.Tensor:
        labels = tf.reshape(tf.cast(features[self.target_name], tf.float32), [-1, 1])
        predictions = self._rating(query, candidate, training)
        total = self.ranking_task(labels=labels, predictions=predictions)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        global_batch = tf.cast(tf.maximum(tf.shape(labels)[0] * replicas, 1), tf.float32)
        return total / global_batch

    def task_losses(self, features: Mapping[str, tf.Tensor], training: bool = False
                    ) -> dict[str, tf.Tensor]:
        """Unweighted loss of each task this model has: `retrieval`, `ranking`."""
        query = self.query_tower(features, training=training)
        candidates, ids = self._candidates(features, training)
        positives = candidates[: tf.shape(query)[0]]
        losses = {}
        if self.retrieval_task is not None:
            extra = {}
            if self.config.logq_correction:
                extra["candidate_sampling_probability"] = self.sampling_probability(
                    ids, tf.shape(query)[0])
            losses["retrieval"] = self.retrieval_task(
                query, candidates, candidate_ids=ids, compute_metrics=False, **extra)
            if self.config.embedding_l2 and training:
                # Summed over the batch, as the retrieval loss is.
                losses["retrieval"] += self.config.embedding_l2 * (
                    tf.reduce_sum(tf.square(query)) + tf.reduce_sum(tf.square(positives)))
        if self.ranking_task is not None:
            losses["ranking"] = self._ranking_loss(query, positives, features, training)
        return losses

    def compute_loss(self, features, training: bool = False) -> tf.Tensor:
        """The training loss: the one task's, or the weighted sum of both (multitask)."""
        losses = self.task_losses(features, training=training)
        if len(losses) == 1:
            return next(iter(losses.values()))
        return (self.config.retrieval_weight * losses["retrieval"]
                + self.config.ranking_weight * losses["ranking"])


def build_model(
    model: ModelConfig,
    features: FeatureConfig,
    sizes: dict[str, int],
    candidate_corpus: dict[str, tf.Tensor] | None = None,
    candidate_probability: np.ndarray | None = None,
) -> tfrs.models.Model:
    """A RecommenderModel; call inside `strategy.scope()` so its variables are distributed.

    `candidate_corpus` (candidate-tower columns, row i = candidate id i) is required for
    `sampled_negatives > 0`; `candidate_probability` (per corpus row) for `logq_correction`.
    Both only apply to retrieval and multitask models.
    """
    if model.has_ranking and features.target is None:
        raise ValueError(f"a {model.type} model needs features.target")
    if model.has_retrieval:
        if model.sampled_negatives and candidate_corpus is None:
            raise ValueError("model.sampled_negatives > 0 needs candidate_corpus")
        if model.logq_correction and candidate_probability is None:
            raise ValueError("model.logq_correction needs candidate_probability")
        if candidate_corpus is not None:
            expected = {c.name for c in features.xf_columns("candidate")}
            missing = expected - set(candidate_corpus)
            if missing:
                raise ValueError(f"candidate_corpus lacks candidate columns {sorted(missing)}")
    elif model.sampled_negatives or model.logq_correction:
        LOGGER.warning("model.sampled_negatives / logq_correction apply to retrieval; "
                       "ignored for a ranking model")
    result = RecommenderModel(model, features, sizes, candidate_corpus, candidate_probability)
    if result.corpus is not None and candidate_probability is not None:
        if len(np.asarray(candidate_probability).reshape(-1)) != result.corpus.size:
            raise ValueError(
                f"candidate_probability has {len(candidate_probability)} rows, "
                f"candidate_corpus {result.corpus.size}"
            )
    return result


def make_optimizer(config: OptimizerConfig, learning_rate: float) -> tf.keras.optimizers.Optimizer:
    """A Keras 2 optimizer from config; create it inside the strategy scope."""
    classes = {
        "adagrad": tf.keras.optimizers.Adagrad,
        "adam": tf.keras.optimizers.Adam,
        "sgd": tf.keras.optimizers.SGD,
    }
    kwargs = {"clipnorm": config.clipnorm} if config.clipnorm is not None else {}
    return classes[config.name](learning_rate=learning_rate, **kwargs)


class StrategyInfo(BaseModel):
    """What `choose_strategy` found and chose (for logs and the run record)."""

    model_config = ConfigDict(frozen=True)

    gpus_visible: list[str] = Field(description="Physical GPUs TensorFlow sees.")
    strategy: str = Field(description="Class name of the chosen tf.distribute strategy.")
    replicas: int = Field(description="Replicas in sync (1 unless mirrored).")


def choose_strategy(
    gpu: GpuConfig, logger: logging.Logger | None = None
) -> tuple[tf.distribute.Strategy, StrategyInfo]:
    """The distribution strategy for `gpu`; raises if GPUs are requested but none is visible."""
    from tasks.trainer.core import require_gpus

    log = logger or LOGGER
    visible = require_gpus(gpu)
    log.info("GPUs visible to TensorFlow: %s", visible or "none")
    if gpu.enabled and gpu.count > 1 and len(visible) >= 2:
        used = min(gpu.count, len(visible))
        if used < gpu.count:
            log.warning("GPUs requested: %d, visible: %d; mirroring over %d",
                        gpu.count, len(visible), used)
        strategy = tf.distribute.MirroredStrategy(devices=[f"/gpu:{i}" for i in range(used)])
    elif gpu.enabled:
        if gpu.count > 1:
            log.warning("GPUs requested: %d, visible: 1; training on one GPU", gpu.count)
        strategy = tf.distribute.OneDeviceStrategy("/gpu:0")
    else:
        if visible:
            log.warning("gpu.enabled is false: %d visible GPU(s) get no distribution strategy "
                        "(TensorFlow may still place ops on /gpu:0)", len(visible))
        strategy = tf.distribute.get_strategy()
    info = StrategyInfo(gpus_visible=visible, strategy=type(strategy).__name__,
                        replicas=strategy.num_replicas_in_sync)
    log.info("Distribution strategy: %s with %d replica(s)", info.strategy, info.replicas)
    return strategy, info
