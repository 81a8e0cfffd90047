"""A few columns of an Examples artifact's split, read batch by batch (bounded memory).

The trivial predictors learn from the train split and are scored on the eval split; they need
one or two columns (a label, a candidate id), so only those are parsed from each tf.Example.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import tensorflow as tf
from tfx.dsl.io import fileio


def split_files(examples_uri: str, splits: list[str]) -> list[str]:
    """The TFRecord files of the given splits of an Examples artifact."""
    files: list[str] = []
    for split in splits:
        found = fileio.glob(f"{examples_uri.rstrip('/')}/Split-{split}/*")
        if not found:
            raise ValueError(f"no examples in split {split!r} of {examples_uri}")
        files.extend(sorted(found))
    return files


def records(files: list[str], batch_size: int) -> tf.data.Dataset:
    """Serialized examples in batches (GZIP when the files say so)."""
    compression = "GZIP" if files[0].endswith(".gz") else None
    return tf.data.TFRecordDataset(files, compression_type=compression).batch(batch_size)


def one_per_row(name: str, tensor: tf.Tensor | tf.SparseTensor) -> tuple[np.ndarray, np.ndarray]:
    """(values, present) of shape [batch]: a row's first value, and whether it has one."""
    if isinstance(tensor, tf.SparseTensor):
        indices = tensor.indices.numpy()
        batch = int(tensor.dense_shape.numpy()[0])
        first = indices[:, 1] == 0
        rows = indices[first, 0]
        values = tensor.values.numpy()[first]
        present = np.zeros(batch, dtype=bool)
        present[rows] = True
        dense = np.zeros(batch, dtype=values.dtype) if values.dtype != object \
            else np.full(batch, b"", dtype=object)
        dense[rows] = values
        return dense, present
    array = tensor.numpy()
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"{name} holds {array.shape[1:]} values per row; one was expected")
    return array, np.ones(array.shape[0], dtype=bool)


def column_batches(
    files: list[str], spec: dict[str, Any], batch_size: int, *, strings: tuple[str, ...] = ()
) -> Iterator[dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Per batch, each column of `spec` (a tf.io feature spec) as `one_per_row` gives it.

    Columns named in `strings` come as bytes, integers written as decimal strings: the form a
    categorical vocabulary was built from (`tasks/transform/preprocessing.py` string_column).
    """

    def parse(serialized):
        parsed = tf.io.parse_example(serialized, spec)
        for name in strings:
            column = parsed[name]
            if column.dtype != tf.string:
                if isinstance(column, tf.SparseTensor):
                    column = tf.SparseTensor(column.indices, tf.strings.as_string(column.values),
                                             column.dense_shape)
                else:
                    column = tf.strings.as_string(column)
            parsed[name] = column
        return parsed

    for parsed in records(files, batch_size).map(parse).prefetch(1):
        yield {name: one_per_row(name, tensor) for name, tensor in parsed.items()}
