"""TFRecord output read back with tf.data (one small test: importing TensorFlow is slow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from synthetic_helpers import read_parquet_columns

from synthetic import SyntheticConfig, generate


def test_tfrecord_shards_parse_to_the_same_rows_as_parquet(tmp_path: Path) -> None:
    import tensorflow as tf

    shape = dict(rows=1_000, rows_per_file=400, chunk_rows=1_000, seed=5)
    records = generate(SyntheticConfig(format="tfrecord", **shape), tmp_path / "tfrecord")
    reference = read_parquet_columns(
        generate(SyntheticConfig(format="parquet", **shape), tmp_path / "parquet").files
    )
    assert [p.name for p in records.files] == [f"data-{i:05d}-of-00003.tfrecord" for i in range(3)]
    assert sorted(records.out_dir.glob("*.tfrecord")) == records.files

    spec = {
        "buyer_id": tf.io.FixedLenFeature([], tf.string),
        "product_id": tf.io.FixedLenFeature([], tf.string),
        "category": tf.io.FixedLenFeature([], tf.string),
        "city": tf.io.FixedLenFeature([], tf.string),
        "timestamp": tf.io.FixedLenFeature([], tf.int64),
        "quantity": tf.io.FixedLenFeature([], tf.int64),
        "rating": tf.io.FixedLenFeature([], tf.float32),
    }
    per_file = [sum(1 for _ in tf.data.TFRecordDataset(str(path))) for path in records.files]
    assert per_file == [400, 400, 200]

    dataset = tf.data.TFRecordDataset([str(p) for p in records.files]).batch(1_000)
    parsed = next(iter(dataset.map(lambda batch: tf.io.parse_example(batch, spec))))
    assert sorted(parsed) == sorted(spec)
    for name in ("buyer_id", "product_id", "category", "city"):
        assert [v.decode() for v in parsed[name].numpy()] == reference[name].tolist()
    for name in ("timestamp", "quantity"):
        np.testing.assert_array_equal(parsed[name].numpy(), reference[name])
    np.testing.assert_allclose(parsed["rating"].numpy(), reference["rating"], rtol=1e-6)

    # Same seed, same bytes: the Example maps are serialised in a deterministic order.
    again = generate(SyntheticConfig(format="tfrecord", **shape), tmp_path / "again")
    for first, second in zip(records.files, again.files):
        assert first.read_bytes() == second.read_bytes()
