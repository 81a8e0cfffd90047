"""Encoding matches TFX's CSV ExampleGen byte for byte, so its hash split does too."""

from __future__ import annotations

import hashlib

import pyarrow as pa
import pytest

from retrain.adapters.streaming import encode

tf = pytest.importorskip("tensorflow")


def _tfx_example(row: dict) -> "tf.train.Example":
    """What TFX's CSV executor builds: one feature per column, an empty list when empty."""
    feature = {}
    for name, value in row.items():
        if isinstance(value, float) or name == "rating":
            feature[name] = tf.train.Feature(
                float_list=tf.train.FloatList(value=[] if value is None else [value]))
        elif isinstance(value, int) or name == "quantity":
            feature[name] = tf.train.Feature(
                int64_list=tf.train.Int64List(value=[] if value is None else [value]))
        else:
            feature[name] = tf.train.Feature(
                bytes_list=tf.train.BytesList(value=[] if value is None else [value]))
    return tf.train.Example(features=tf.train.Features(feature=feature))


ROWS = [
    {"buyer_id": b"B1", "quantity": 3, "rating": 4.5, "city": b"city_00"},
    {"buyer_id": b"B22", "quantity": None, "rating": 1.25, "city": None},
    {"buyer_id": b"", "quantity": -7, "rating": None, "city": b"x" * 300},
]


def _batch() -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        [pa.array([r["buyer_id"] for r in ROWS], pa.binary()),
         pa.array([r["quantity"] for r in ROWS], pa.int64()),
         pa.array([r["rating"] for r in ROWS], pa.float32()),
         pa.array([r["city"] for r in ROWS], pa.binary())],
        ["buyer_id", "quantity", "rating", "city"],
    )


def test_records_are_tfx_deterministic_serializations():
    records, _ = encode.ExampleEncoder().encode(encode.feature_lists(_batch()))
    expected = [_tfx_example(row).SerializeToString(deterministic=True) for row in ROWS]
    assert records == expected


def test_split_and_partition_keys_are_tfxs():
    from tfx.components.example_gen import base_example_gen_executor as tfx_gen
    from tfx.proto import example_gen_pb2

    records, entries = encode.ExampleEncoder().encode(encode.feature_lists(_batch()))
    config = example_gen_pb2.SplitConfig(partition_feature_name="city")
    for index, row in enumerate(ROWS):
        example = _tfx_example(row)
        assert encode.feature_value(entries["city"][index]) == (
            tfx_gen._GeneratePartitionKey(example, config))  # noqa: SLF001 - TFX's own key
    keys = [hashlib.sha256(str(i).encode()).digest() for i in range(5000)]
    totals = encode.cumulative([8, 2])
    ours = encode.split_of(keys, totals)
    theirs = [tfx_gen._PartitionFn(k, 2, totals, example_gen_pb2.SplitConfig())  # noqa: SLF001
              for k in keys]
    assert ours == theirs and 0.75 < ours.count(0) / len(ours) < 0.85
