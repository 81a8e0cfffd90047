"""Towers: transformed columns (`XfColumn`) → embeddings → dense stack → one embedding.

Everything is built from `FeatureConfig.xf_columns(tower)` and `LayerConfig`s by ordinary
code, so a tower is exactly what its config says and nothing is generated as text.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

from retrain.adapters.tfx import prepare_tf_environment

# tensorflow_recommenders needs Keras 2: the env must be set before TensorFlow is imported.
prepare_tf_environment()

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from retrain.domain.features import FeatureConfig, XfColumn  # noqa: E402
from retrain.domain.recommender import LayerConfig  # noqa: E402


def input_sizes(
    features: FeatureConfig, vocabulary_size: Callable[[str], int]
) -> dict[str, int]:
    """Embedding input size of every id/sparse_id column, by transformed name.

    `size` where the column has a fixed range, else `vocabulary_size(vocabulary) +
    oov_buckets` (pass `TFTransformOutput.vocabulary_size_by_name`).
    """
    sizes: dict[str, int] = {}
    for column in features.xf_columns():
        if column.kind == "float":
            continue
        if column.size is not None:
            sizes[column.name] = column.size
        elif column.vocabulary is not None:
            sizes[column.name] = int(vocabulary_size(column.vocabulary)) + column.oov_buckets
        else:
            raise ValueError(f"column {column.name!r} has neither a size nor a vocabulary")
    return sizes


def dense_stack(layers: Sequence[LayerConfig], prefix: str) -> list[tf.keras.layers.Layer]:
    """Keras layers for a LayerConfig list: Dense → BatchNorm? → activation → Dropout?."""
    stack: list[tf.keras.layers.Layer] = []
    for index, config in enumerate(layers):
        name = f"{prefix}_{index}"
        # A bias before batch normalisation is cancelled by its mean; leave it out.
        stack.append(tf.keras.layers.Dense(
            config.units, use_bias=not config.batch_norm, name=f"{name}_dense"))
        if config.batch_norm:
            stack.append(tf.keras.layers.BatchNormalization(name=f"{name}_batch_norm"))
        stack.append(tf.keras.layers.Activation(
            config.activation, name=f"{name}_{config.activation}"))
        if config.dropout > 0:
            stack.append(tf.keras.layers.Dropout(config.dropout, name=f"{name}_dropout"))
    return stack


def column_values(value) -> np.ndarray | list:
    """One batch column as a numpy array (dense) or a list of id arrays (sparse, ragged)."""
    if isinstance(value, tf.SparseTensor):
        value = tf.RaggedTensor.from_sparse(value)
    if isinstance(value, tf.RaggedTensor):
        return list(value.numpy())
    return np.reshape(np.asarray(value), [-1])


def as_sparse_ids(value: tf.Tensor | tf.SparseTensor | tf.RaggedTensor) -> tf.SparseTensor:
    """[batch, n] int64 ids as a SparseTensor (ragged, sparse or dense with all entries ids)."""
    if isinstance(value, tf.RaggedTensor):
        value = value.to_sparse()
    elif not isinstance(value, tf.SparseTensor):
        value = tf.convert_to_tensor(value)
        if value.shape.rank == 1:
            value = tf.expand_dims(value, 1)
        value = tf.RaggedTensor.from_tensor(value).to_sparse()
    if value.dtype != tf.int64:
        value = tf.SparseTensor(value.indices, tf.cast(value.values, tf.int64), value.dense_shape)
    return value


class PooledEmbedding(tf.keras.layers.Layer):
    """Mean of the embeddings of each row's ids; a row without ids embeds to zeros."""

    def __init__(self, input_dim: int, output_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.input_dim = input_dim
        self.output_dim = output_dim
        self.embeddings = self.add_weight(
            name="embeddings", shape=(input_dim, output_dim), initializer="uniform"
        )

    def call(self, ids):
        """ids: [batch, n] SparseTensor, RaggedTensor or dense int ids → [batch, output_dim]."""
        pooled = tf.nn.safe_embedding_lookup_sparse(
            self.embeddings, as_sparse_ids(ids), combiner="mean"
        )
        return tf.reshape(pooled, [-1, self.output_dim])


class Tower(tf.keras.Model):
    """One tower: its own columns' embeddings and floats, concatenated, through a dense stack.

    `call(features)` reads only this tower's columns, so the full transformed-features dict
    (other tower, target, anything else) can be passed as is.
    """

    def __init__(
        self,
        columns: Sequence[XfColumn],
        sizes: Mapping[str, int],
        layers: Sequence[LayerConfig],
        output_dim: int,
        name: str | None = None,
    ):
        super().__init__(name=name)
        if not columns:
            raise ValueError(f"tower {name!r} has no input columns")
        self.columns = list(columns)
        self.embeddings: dict[str, tf.keras.layers.Layer] = {}
        for column in self.columns:
            if column.kind == "float":
                continue
            if column.name not in sizes:
                raise ValueError(f"tower {name!r}: no input size for {column.name!r}")
            if column.embedding_dim is None:
                raise ValueError(f"tower {name!r}: {column.name!r} has no embedding_dim")
            layer_cls = tf.keras.layers.Embedding if column.kind == "id" else PooledEmbedding
            self.embeddings[column.name] = layer_cls(
                sizes[column.name], column.embedding_dim, name=f"{column.name}_embedding"
            )
        self.mlp = tf.keras.Sequential(
            [*dense_stack(layers, "hidden"), tf.keras.layers.Dense(output_dim, name="output")],
            name="mlp",
        )
        self.output_dim = output_dim

    def create_variables(self) -> None:
        """Create every weight now (in the caller's strategy scope), from a 1-row input."""
        dummy = {}
        for column in self.columns:
            if column.kind == "float":
                dummy[column.name] = tf.zeros([1], tf.float32)
            elif column.kind == "id":
                dummy[column.name] = tf.zeros([1], tf.int64)
            else:
                dummy[column.name] = tf.RaggedTensor.from_row_lengths(
                    tf.zeros([0], tf.int64), tf.constant([0], tf.int64))
        self.mlp(self.embed_inputs(dummy), training=False)

    def embed_inputs(self, features: Mapping[str, tf.Tensor]) -> tf.Tensor:
        """[batch, sum of input widths]: this tower's columns, before the dense stack."""
        parts = []
        for column in self.columns:
            if column.name not in features:
                raise KeyError(
                    f"tower {self.name!r}: feature {column.name!r} is missing "
                    f"(got {sorted(features)})"
                )
            value = features[column.name]
            if column.kind == "float":
                parts.append(tf.reshape(tf.cast(value, tf.float32), [-1, 1]))
            elif column.kind == "id":
                parts.append(self.embeddings[column.name](tf.reshape(value, [-1])))
            else:
                parts.append(self.embeddings[column.name](value))
        return tf.concat(parts, axis=1)

    def call(self, features, training=None):
        """features: dict of transformed columns → [batch, output_dim] float32."""
        return self.mlp(self.embed_inputs(features), training=training)
