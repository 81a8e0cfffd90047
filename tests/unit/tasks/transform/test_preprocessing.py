"""The library preprocessing_fn, analysed by real tf.Transform on six hand-checked rows.

One in-memory analysis (Beam DirectRunner) over a config with every feature kind; the written
transform graph is then applied to the same rows, parsed from tf.Examples as Transform and
serving parse them, so row order is the order below.
"""

from __future__ import annotations

import datetime as dt
import json
import math

import pytest

from retrain.adapters.tfx import prepare_tf_environment

prepare_tf_environment()

import tensorflow as tf  # noqa: E402
import tensorflow_transform as tft  # noqa: E402
import tensorflow_transform.beam as tft_beam  # noqa: E402

from retrain.domain.features import FeatureConfig  # noqa: E402
from tasks.transform.preprocessing import preprocessing_fn  # noqa: E402

FEATURES = FeatureConfig.model_validate(
    {
        "query": [
            {"kind": "categorical", "name": "buyer_id", "embedding_dim": 4,
             "frequency_threshold": 2},
            {"kind": "categorical", "name": "city", "embedding_dim": 4},
            {"kind": "timestamp", "name": "ts", "day_buckets": 2},
        ],
        "candidate": [
            {"kind": "categorical", "name": "product_id", "embedding_dim": 4, "top_k": 2},
            {"kind": "numeric", "name": "price"},
            {"kind": "numeric", "name": "qty", "transform": "bucketize", "num_buckets": 2},
            {"kind": "text", "name": "title", "embedding_dim": 4, "hash_buckets": 1000},
        ],
        "crosses": [{"columns": ["city", "buyer_id"], "hash_buckets": 50, "embedding_dim": 2}],
        "target": {"column": "rating", "transform": "log1p", "default_value": 1.0},
        "feedback": [{"column": "rating", "kind": "rating", "low": 1.0, "high": 5.0},
                     {"column": "qty", "kind": "count", "low": 1.0}],
    }
)

MONDAY = 4 * 86_400  # 1970-01-05 00:00 UTC
TUESDAY_LATE = 1_700_000_000  # 2023-11-14 22:13:20 UTC
# Raw feature spec as SchemaGen would give it: FixedLen where always present (with and
# without a shape), VarLen where values can be missing.
RAW_SPEC = {
    "buyer_id": tf.io.VarLenFeature(tf.string),
    "city": tf.io.FixedLenFeature([], tf.string),
    "ts": tf.io.FixedLenFeature([], tf.int64),
    "product_id": tf.io.FixedLenFeature([1], tf.string),
    "price": tf.io.FixedLenFeature([1], tf.int64),
    "qty": tf.io.VarLenFeature(tf.float32),
    "title": tf.io.VarLenFeature(tf.string),
    "rating": tf.io.VarLenFeature(tf.float32),
}
# None: value missing in that row.
ROWS = [
    dict(buyer_id="b1", city="paris", ts=0, product_id="p1", price=10, qty=1.0,
         title="Red Shoe", rating=3.0),
    dict(buyer_id="b1", city="paris", ts=MONDAY, product_id="p1", price=20, qty=2.0,
         title="red  SHOE ", rating=None),
    dict(buyer_id="b2", city="lyon", ts=MONDAY + 6 * 3600, product_id="p2", price=30, qty=None,
         title=None, rating=0.0),
    dict(buyer_id=None, city="lyon", ts=TUESDAY_LATE, product_id="p2", price=40, qty=8.0,
         title="", rating=-2.0),
    dict(buyer_id="b3", city="lyon", ts=TUESDAY_LATE + 86_400, product_id="p1", price=50,
         qty=9.0, title="Blue", rating=7.0),
    dict(buyer_id="b1", city="nice", ts=TUESDAY_LATE + 3600, product_id="p3", price=60,
         qty=10.0, title="Tapis ÉTÉ", rating=0.5),
]


def _instance(row: dict) -> dict:
    """tf.Transform instance dict: FixedLen [] → scalar, [1] → list, VarLen → list."""
    out = {}
    for name, spec in RAW_SPEC.items():
        value = row[name]
        if isinstance(spec, tf.io.VarLenFeature):
            out[name] = [] if value is None else [value]
        else:
            out[name] = [value] if spec.shape else value
    return out


def _example(row: dict) -> bytes:
    feature = {}
    for name, value in row.items():
        if value is None:
            continue
        if isinstance(value, str):
            feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))
        elif RAW_SPEC[name].dtype == tf.int64:
            feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
        else:
            feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    """(TFTransformOutput, transformed columns as numpy) for ROWS."""
    from tfx.components.transform import executor_utils

    # Bind custom_config exactly as TFX's Transform executor does, from the JSON exec property.
    fn = executor_utils.MaybeBindCustomConfig(
        {"custom_config": json.dumps({"features": FEATURES.model_dump(mode="json")})},
        preprocessing_fn,
    )
    out_dir = str(tmp_path_factory.mktemp("transform_graph"))
    metadata = tft.DatasetMetadata.from_feature_spec(RAW_SPEC)
    with tft_beam.Context(temp_dir=str(tmp_path_factory.mktemp("tft_tmp"))):
        transform_fn = ([_instance(r) for r in ROWS], metadata) | tft_beam.AnalyzeDataset(fn)
        _ = transform_fn | tft_beam.WriteTransformFn(out_dir)
    output = tft.TFTransformOutput(out_dir)
    raw = tf.io.parse_example(tf.constant([_example(r) for r in ROWS]), RAW_SPEC)
    transformed = output.transform_raw_features(raw, drop_unused_features=True)
    columns = {
        name: [list(row) for row in tf.sparse.to_dense(t, -1).numpy()]
        if isinstance(t, tf.SparseTensor) else t.numpy().tolist()
        for name, t in transformed.items()
    }
    # Sparse rows were padded with -1 to densify; keep only the real ids.
    for column in FEATURES.xf_columns():
        if column.kind == "sparse_id":
            columns[column.name] = [[i for i in row if i != -1] for row in columns[column.name]]
    return output, columns


def _hash(values: list[str], buckets: int) -> list[int]:
    return tf.strings.to_hash_bucket_fast(tf.constant(values, tf.string), buckets).numpy().tolist()


def test_outputs_are_exactly_the_config_columns_with_their_kinds(analysed):
    output, columns = analysed
    expected = [c.name for c in FEATURES.xf_columns()] + [FEATURES.target.xf_name,
                                                          "rating__feedback_xf", "qty__feedback_xf"]
    assert sorted(columns) == sorted(expected)
    spec = output.transformed_feature_spec()
    assert sorted(spec) == sorted(expected)
    for column in FEATURES.xf_columns():
        if column.kind == "sparse_id":
            assert spec[column.name] == tf.io.VarLenFeature(tf.int64), column.name
        else:
            dtype = tf.int64 if column.kind == "id" else tf.float32
            assert spec[column.name] == tf.io.FixedLenFeature([], dtype), column.name
    assert spec["rating_xf"] == tf.io.FixedLenFeature([], tf.float32)
    assert spec["qty__feedback_xf"] == tf.io.FixedLenFeature([], tf.float32)


def test_vocabulary_is_ordered_by_frequency(analysed):
    output, columns = analysed
    # lyon ×3, paris ×2, nice ×1.
    assert output.vocabulary_by_name("city") == [b"lyon", b"paris", b"nice"]
    assert columns["city_xf"] == [1, 1, 0, 0, 0, 2]


def test_top_k_sends_rare_values_to_the_oov_bucket(analysed):
    output, columns = analysed
    # p1 ×3, p2 ×2, p3 ×1; top_k=2 keeps p1, p2; 1 OOV bucket → index 2.
    assert output.vocabulary_by_name("product_id") == [b"p1", b"p2"]
    assert columns["product_id_xf"] == [0, 0, 1, 1, 0, 2]


def test_frequency_threshold_and_missing_categorical(analysed):
    output, columns = analysed
    # b1 ×3 stays; b2, b3 (×1) fall below 2; a missing id is "" which tf.Transform never
    # keeps in a vocabulary: all of them land in the single OOV bucket, index 1.
    assert output.vocabulary_by_name("buyer_id") == [b"b1"]
    assert columns["buyer_id_xf"] == [0, 0, 1, 1, 1, 0]


def test_zscore_uses_mean_and_population_std_of_int_input(analysed):
    _, columns = analysed
    mean = 35.0  # 10, 20, … 60
    std = math.sqrt((25**2 + 15**2 + 5**2) * 2 / 6)
    expected = [(x - mean) / std for x in (10, 20, 30, 40, 50, 60)]
    assert columns["price_xf"] == pytest.approx(expected, abs=1e-5)


def test_bucketize_splits_at_the_median_and_missing_is_zero(analysed):
    _, columns = analysed
    # qty 1, 2, missing → 0, 8, 9, 10: two quantile buckets split between 2 and 8.
    assert columns["qty_xf"] == [0, 0, 0, 1, 1, 1]


def test_timestamp_hour_and_weekday_cycles(analysed):
    _, columns = analysed
    thursday = 2 * math.pi * 3 / 7  # 1970-01-01 is a Thursday: weekday 3
    tuesday_hour = 2 * math.pi * (22 * 3600 + 13 * 60 + 20) / 86_400
    assert dt.datetime.fromtimestamp(TUESDAY_LATE, dt.timezone.utc).weekday() == 1
    expect_weekday = [thursday, 0.0, 0.0, 2 * math.pi / 7, 2 * 2 * math.pi / 7, 2 * math.pi / 7]
    expect_hour = [0.0, 0.0, math.pi / 2, tuesday_hour, tuesday_hour,
                   tuesday_hour + 2 * math.pi / 24]
    approx = dict(abs=1e-5)
    for period, angles in (("weekday", expect_weekday), ("hour", expect_hour)):
        sin, cos = columns[f"ts__{period}_sin_xf"], columns[f"ts__{period}_cos_xf"]
        assert sin == pytest.approx([math.sin(a) for a in angles], **approx), period
        assert cos == pytest.approx([math.cos(a) for a in angles], **approx), period
    # Monday 1970-01-05 00:00 → weekday 0, hour 0: (sin, cos) = (0, 1) for both.
    assert [columns[f"ts__{p}_{f}_xf"][1] for p in ("hour", "weekday") for f in ("sin", "cos")] \
        == pytest.approx([0.0, 1.0, 0.0, 1.0], **approx)


def test_day_buckets_split_old_from_recent_days(analysed):
    _, columns = analysed
    # Days since epoch 0, 4, 4, 19675, 19676, 19675.
    assert columns["ts__day_xf"] == [0, 0, 0, 1, 1, 1]


def test_text_tokens_are_lower_cased_hashed_and_missing_gives_none(analysed):
    _, columns = analysed
    red_shoe = _hash(["red", "shoe"], 1000)
    assert columns["title_xf"] == [
        red_shoe,
        red_shoe,  # "red  SHOE ": case, repeated and trailing delimiters do not matter
        [],  # missing
        [],  # ""
        _hash(["blue"], 1000),
        _hash(["tapis", "été"], 1000),  # lower-cased as UTF-8, not only ASCII
    ]


def test_cross_hashes_the_joined_raw_values(analysed):
    _, columns = analysed
    joined = ["paris_x_b1", "paris_x_b1", "lyon_x_b2", "lyon_x_", "lyon_x_b3", "nice_x_b1"]
    assert columns["city_x_buyer_id_xf"] == _hash(joined, 50)


def test_target_log1p_clips_negatives_and_fills_missing(analysed):
    _, columns = analysed
    # 3, missing → default 1 (raw units), 0, -2 → 0, 7, 0.5
    expected = [math.log(4), math.log(2), 0.0, 0.0, math.log(8), math.log1p(0.5)]
    assert columns["rating_xf"] == pytest.approx(expected, abs=1e-6)


def test_feedback_columns_pass_raw_values_and_missing_is_nan(analysed):
    """The posterior fit reads a rating on its own scale (no target transform, no default):
    a missing one is NaN, which the fit skips."""
    _, columns = analysed
    ratings = columns["rating__feedback_xf"]
    assert math.isnan(ratings[1])
    assert [r for i, r in enumerate(ratings) if i != 1] == [3.0, 0.0, -2.0, 7.0, 0.5]
    quantities = columns["qty__feedback_xf"]
    assert math.isnan(quantities[2])
    assert [q for i, q in enumerate(quantities) if i != 2] == [1.0, 2.0, 8.0, 9.0, 10.0]


def test_a_config_column_missing_from_the_data_is_named():
    inputs = {name: tf.constant(["x"]) for name in FEATURES.raw_columns() if name != "price"}
    inputs["rating"] = tf.constant([1.0])
    with pytest.raises(ValueError, match=r"\['price'\] not in the transform inputs; "
                                         r"available columns: \['buyer_id', 'city'"):
        preprocessing_fn(inputs, {"features": FEATURES.model_dump(mode="json")})


def test_missing_feature_config_is_refused():
    with pytest.raises(ValueError, match="needs custom_config"):
        preprocessing_fn({}, {})
