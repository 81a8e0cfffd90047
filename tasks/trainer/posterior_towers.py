"""The posterior fit end to end: the train split as `posterior.TrainRows`, the fit with a
training record per block of steps, and the samples as two towers the export serves.

The served towers put every sample's embeddings side by side: a query embeds to
[q_1 … q_S] / S ‖ 1 and a candidate to [c_1 … c_S] ‖ mean bias, so their dot product is the
mean over samples of q_s · c_s + b_s, which ranks a query's candidates as the mean of the
samples' log choice probabilities does. The export, the index and the Evaluator use them as
they use any two-tower model.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable, Mapping

import numpy as np
import tensorflow as tf

from retrain.domain.features import FeatureConfig, XfColumn
from retrain.domain.recommender import ModelConfig, PosteriorConfig
from retrain.domain.refs import EpochMetrics
from tasks.trainer import posterior
from tasks.trainer.towers import as_sparse_ids, column_values

Towers = Mapping[str, tf.Tensor]


def _precision(features: FeatureConfig, tower: str, config: PosteriorConfig) -> dict[str, float]:
    """Prior precision per xf column: `id_l2` for the tower's id, `shared_l2` for the rest."""
    if tower == "candidate":
        identity = features.candidate_id_feature.xf_name()
    else:
        identity = next((f.xf_name() for f in features.query if f.kind == "categorical"), None)
    return {c.name: config.id_l2 if c.name == identity else config.shared_l2
            for c in features.xf_columns(tower)}


def _slots(columns: list[XfColumn], sizes: Mapping[str, int]) -> dict[str, tuple[int, int]]:
    """(offset, width) of each column's slots in its tower's design."""
    layout, offset = {}, 0
    for column in columns:
        width = 1 if column.kind == "float" else sizes[column.name]
        layout[column.name] = (offset, width)
        offset += width
    return layout


def design(columns: list[XfColumn], sizes: Mapping[str, int], values: Mapping[str, object],
           precision: Mapping[str, float]) -> posterior.Design:
    """One tower's design matrix: a row per entry of ``values``' columns (ids one-hot, sparse
    ids 1 / their count each, floats as they are)."""
    layout = _slots(columns, sizes)
    rows, slots, data = [], [], []
    count = None
    for column in columns:
        offset, width = layout[column.name]
        value = values[column.name]
        if column.kind == "sparse_id":
            lengths = np.array([len(ids) for ids in value], dtype=np.int64)
            flat = np.concatenate([np.asarray(ids, np.int64) for ids in value]) \
                if lengths.sum() else np.zeros(0, np.int64)
            rows.append(np.repeat(np.arange(len(value)), lengths))
            slots.append(offset + flat)
            data.append(np.repeat(1.0 / np.maximum(lengths, 1), lengths))
            count = len(value)
            continue
        value = np.asarray(value).reshape(-1)
        count = len(value)
        rows.append(np.arange(count))
        if column.kind == "id":
            slots.append(offset + np.clip(value.astype(np.int64), 0, width - 1))
            data.append(np.ones(count))
        else:
            slots.append(np.full(count, offset))
            data.append(value.astype(np.float64))
    width = sum(w for _, w in layout.values())
    slot_precision = np.concatenate([np.full(layout[c.name][1], precision[c.name])
                                     for c in columns])
    return posterior.Design(np.concatenate(rows), np.concatenate(slots),
                            np.concatenate(data), (int(count), width), slot_precision)


def _distinct(columns: list[XfColumn], values: Mapping[str, list]) -> tuple[np.ndarray, np.ndarray]:
    """(first row of each distinct query, each row's distinct-query index)."""
    dense = [np.asarray(values[c.name], np.float64) for c in columns if c.kind != "sparse_id"]
    keys = np.stack(dense, axis=1) if dense else np.zeros((len(values[columns[0].name]), 0))
    sparse = [values[c.name] for c in columns if c.kind == "sparse_id"]
    if not sparse:
        _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
        return first, inverse.reshape(-1)
    lookup: dict[tuple, int] = {}
    inverse = np.empty(len(keys), np.int64)
    first: list[int] = []
    for row in range(len(keys)):
        key = (keys[row].tobytes(), *(tuple(ids[row]) for ids in sparse))
        index = lookup.setdefault(key, len(lookup))
        if index == len(first):
            first.append(row)
        inverse[row] = index
    return np.asarray(first), inverse


def read_train_rows(batches: Iterable[Mapping[str, object]], features: FeatureConfig,
                    sizes: Mapping[str, int], corpus_features: Mapping[str, object],
                    config: PosteriorConfig) -> posterior.TrainRows:
    """The train split as the posterior fit reads it; raises, naming the sizes, when distinct
    queries × candidates exceed `max_cells`."""
    query_columns = features.xf_columns("query")
    id_column = features.candidate_id_feature.xf_name()
    gathered: dict[str, list] = {name: [] for name in
                                 [c.name for c in query_columns] + [id_column]
                                 + [f.xf_name for f in features.feedback]}
    for batch in batches:
        for name, parts in gathered.items():
            value = column_values(batch[name])
            if isinstance(value, list):  # sparse ids: one array per row
                parts.extend(value)
            else:
                parts.append(value)
    candidate_columns = features.xf_columns("candidate")
    candidates = design(candidate_columns, sizes,
                        {c.name: column_values(corpus_features[c.name])
                         for c in candidate_columns},
                        _precision(features, "candidate", config))
    chosen = np.concatenate(gathered[id_column]).astype(np.int64)
    known = chosen < candidates.shape[0]  # OOV rows are not candidates
    if not known.any():
        raise ValueError("posterior fit: the train split has no rows with a known candidate")
    kept = np.flatnonzero(known)
    values = {c.name: [gathered[c.name][i] for i in kept] if c.kind == "sparse_id"
              else np.concatenate(gathered[c.name])[kept] for c in query_columns}
    first, inverse = _distinct(query_columns, values)
    cells = len(first) * candidates.shape[0]
    if cells > config.max_cells:
        raise ValueError(
            f"model.fit posterior: {len(first):,} distinct queries × {candidates.shape[0]:,} "
            f"candidates = {cells:,} scores, over model.posterior.max_cells "
            f"{config.max_cells:,}; the fit holds them all at once. Leave per-row query "
            "features (timestamps, numbers) out of features.query, raise max_cells if memory "
            "allows, or use model.fit: sgd")
    distinct = {c.name: [values[c.name][i] for i in first] if c.kind == "sparse_id"
                else values[c.name][first] for c in query_columns}
    queries = design(query_columns, sizes, distinct, _precision(features, "query", config))
    feedback = [posterior.Feedback(f, np.concatenate(gathered[f.xf_name])[known]
                                   .astype(np.float64)) for f in features.feedback]
    return posterior.TrainRows(queries, candidates, inverse, chosen[known], feedback)


class SampledTower(tf.Module):
    """A tower serving posterior samples side by side: (samples · latent + 1) wide."""

    def __init__(self, columns: list[XfColumn], sizes: Mapping[str, int],
                 weights: np.ndarray, scale: float, extra_column: str | None = None,
                 extra: np.ndarray | None = None, name: str | None = None):
        super().__init__(name=name)
        samples, _, latent = weights.shape
        self.columns = list(columns)
        self.output_dim = samples * latent + 1
        self.tables: dict[str, tf.Variable] = {}
        layout = _slots(self.columns, sizes)
        for column in self.columns:
            offset, width = layout[column.name]
            part = weights[:, offset:offset + width, :].transpose(1, 0, 2)
            self.tables[column.name] = tf.Variable(
                (scale * part.reshape(width, samples * latent)).astype(np.float32),
                trainable=False, name=f"{column.name}_samples")
        self._extra_column = extra_column
        self.extra = None if extra is None else tf.Variable(
            extra.astype(np.float32), trainable=False, name="bias")

    def __call__(self, features: Towers) -> tf.Tensor:
        """Transformed features → [batch, output_dim] float32."""
        total = None
        for column in self.columns:
            value, table = features[column.name], self.tables[column.name]
            if column.kind == "id":
                part = tf.gather(table, tf.reshape(tf.cast(value, tf.int64), [-1]))
            elif column.kind == "sparse_id":
                part = tf.reshape(tf.nn.safe_embedding_lookup_sparse(
                    table, as_sparse_ids(value), combiner="mean"), [-1, table.shape[1]])
            else:
                part = tf.reshape(tf.cast(value, tf.float32), [-1, 1]) * table[0]
            total = part if total is None else total + part
        if self.extra is None:
            last = tf.ones_like(total[:, :1])
        else:
            ids = tf.reshape(tf.cast(features[self._extra_column], tf.int64), [-1])
            last = tf.reshape(tf.gather(self.extra, ids), [-1, 1])
        return tf.concat([total, last], axis=1)


class PosteriorModel(tf.Module):
    """The samples as the export sees a model: `query_tower`, `candidate_tower`, `config`."""

    def __init__(self, model: ModelConfig, features: FeatureConfig, sizes: Mapping[str, int],
                 samples: posterior.Samples):
        super().__init__(name="posterior_model")
        self.config = model
        self.step_size = samples.step_size
        count = len(samples)
        self.query_tower = SampledTower(features.xf_columns("query"), sizes,
                                        np.stack(samples.query), 1.0 / count,
                                        name="query_tower")
        id_column = features.candidate_id_feature.xf_name()
        bias = np.mean(samples.bias, axis=0)
        # Ids beyond the corpus (OOV buckets) get the mean bias.
        table = np.full(sizes[id_column], bias.mean())
        table[:len(bias)] = bias
        self.candidate_tower = SampledTower(features.xf_columns("candidate"), sizes,
                                            np.stack(samples.candidate), 1.0, id_column,
                                            table, name="candidate_tower")


def train_posterior(model: ModelConfig, features: FeatureConfig, sizes: Mapping[str, int],
                    rows: posterior.TrainRows, seed: int | None,
                    validate: Callable[[PosteriorModel], dict[str, float]] | None,
                    record: Callable[[EpochMetrics], None],
                    log: Callable[[str], None]) -> PosteriorModel:
    """Fit, publishing one record per block of steps (the −log posterior per train row and,
    with ``validate``, the validation metrics of the samples kept so far); the served model."""
    config = model.posterior
    rows_count = len(rows.row_query)
    previous = [0.0]

    def on_block(progress: posterior.Progress) -> None:
        kept = progress.samples if len(progress.samples) else progress.current
        metrics = {"loss": progress.value / rows_count, "step": float(progress.step),
                   "samples": float(len(progress.samples))}
        if validate is not None:
            metrics.update(validate(PosteriorModel(model, features, sizes, kept)))
        block = round(progress.step * config.records / config.steps)
        record(EpochMetrics(epoch=block, total_epochs=config.records,
                            seconds=progress.seconds - previous[0], metrics=metrics))
        previous[0] = progress.seconds

    started = time.monotonic()
    samples = posterior.fit(rows, config, seed, blocks=config.records, on_block=on_block,
                            log=log)
    log(f"posterior fit: {len(samples)} samples in {time.monotonic() - started:.0f} s "
        f"(Langevin step {samples.step_size:g})")
    return PosteriorModel(model, features, sizes, samples)
