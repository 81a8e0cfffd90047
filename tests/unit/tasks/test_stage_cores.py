"""Pure logic of the stage cores, against small hand-checked inputs (no executors run)."""

from __future__ import annotations

import json

import pytest

from retrain.domain.config import EvaluatorConfig, InputConfig
from retrain.domain.refs import ArtifactRef, StageOutput


# ExampleGen -------------------------------------------------------------------------------
def test_split_configs_hash_buckets_and_partition_feature():
    from tasks.example_gen.core import split_configs

    source = InputConfig(uri="/d", pattern="*.csv",
                         split={"train_buckets": 4, "eval_buckets": 1, "partition_feature": "buyer_id"})
    input_json, output_json = split_configs(source)
    assert json.loads(input_json) == {"splits": [{"name": "single_split", "pattern": "*.csv"}]}
    output = json.loads(output_json)["split_config"]
    assert output["splits"] == [{"name": "train", "hash_buckets": 4},
                                {"name": "eval", "hash_buckets": 1}]
    assert output["partition_feature_name"] == "buyer_id"


def test_empty_inputs_are_refused_before_beam(tmp_path):
    from tasks.example_gen.core import check_not_empty
    from tasks.shared.fingerprint import InputDataError

    header_only = tmp_path / "a.csv"
    header_only.write_text("buyer_id,rating\n\n")
    with pytest.raises(InputDataError, match="input data is empty: 1 csv file"):
        check_not_empty(InputConfig(uri=str(tmp_path)), [str(header_only)])
    rows = tmp_path / "b.csv"
    rows.write_text("buyer_id,rating\nB1,3.0\n")
    check_not_empty(InputConfig(uri=str(tmp_path)), [str(header_only), str(rows)])


def test_empty_parquet_is_refused(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tasks.example_gen.core import check_not_empty
    from tasks.shared.fingerprint import InputDataError

    path = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"rating": pa.array([], pa.float64())}), path)
    with pytest.raises(InputDataError, match="empty"):
        check_not_empty(InputConfig(uri=str(tmp_path), format="parquet"), [str(path)])


def test_time_holdout_puts_the_last_days_in_eval():
    import tensorflow as tf

    from tasks.example_gen.time_holdout import SECONDS_PER_DAY, holdout_partition

    def example(ts: int):
        return tf.train.Example(features=tf.train.Features(feature={
            "ts": tf.train.Feature(int64_list=tf.train.Int64List(value=[ts]))}))

    latest = 100 * SECONDS_PER_DAY
    cutoff = latest - 7 * SECONDS_PER_DAY
    assert holdout_partition(example(latest), 2, column="ts", cutoff=cutoff) == 1
    assert holdout_partition(example(cutoff + 1).SerializeToString(), 2, "ts", cutoff) == 1
    assert holdout_partition(example(cutoff), 2, column="ts", cutoff=cutoff) == 0
    with pytest.raises(ValueError, match="timestamp column 'when' is missing"):
        holdout_partition(example(1), 2, column="when", cutoff=0)


# StatisticsGen ----------------------------------------------------------------------------
def _stats(rows: int, missing: dict[str, int]):
    from tensorflow_metadata.proto.v0 import statistics_pb2

    stats = statistics_pb2.DatasetFeatureStatisticsList()
    dataset = stats.datasets.add(num_examples=rows)
    for name, gaps in missing.items():
        feature = dataset.features.add()
        feature.path.step.append(name)
        feature.num_stats.common_stats.num_missing = gaps
    return stats


def test_split_summary_counts_rows_features_and_missing():
    from tasks.statistics_gen.core import feature_names, summarize_split

    stats = _stats(200, {"rating": 0, "city": 50})
    summary = summarize_split(stats)
    assert (summary.rows, summary.features) == (200, 2)
    assert summary.missing_pct == {"city": 25.0}
    assert feature_names(stats) == ["city", "rating"]


def test_split_checks_name_empty_splits_and_a_missing_label():
    from retrain.domain.refs import SplitStats
    from tasks.statistics_gen.core import check_splits

    splits = {"train": SplitStats(rows=10, features=2), "eval": SplitStats(rows=0, features=2)}
    with pytest.raises(ValueError, match=r"split\(s\) \['eval'\] have no rows"):
        check_splits(splits, ["a", "b"], None)
    splits["eval"] = SplitStats(rows=3, features=2)
    with pytest.raises(ValueError, match="label column 'tips' does not exist.*\\['a', 'b'\\]"):
        check_splits(splits, ["a", "b"], "tips")
    check_splits(splits, ["a", "tips"], "tips")


# ExampleValidator -------------------------------------------------------------------------
def test_anomalies_are_described_per_feature():
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    from tasks.example_validator.core import describe

    anomalies = anomalies_pb2.Anomalies()
    anomalies.anomaly_info["city"].description = "Expected data of type: INT but got STRING"
    anomalies.anomaly_info["age"].short_description = "Column dropped"
    assert describe(anomalies) == [
        "age: Column dropped", "city: Expected data of type: INT but got STRING"]
    assert describe(anomalies_pb2.Anomalies()) == []


# Evaluator --------------------------------------------------------------------------------
def test_eval_config_thresholds():
    from tasks.evaluator.core import build_eval_config

    config = EvaluatorConfig(
        label_key="tips_xf", preprocessing_function_names=["transform_features"],
        metrics=[
            {"class_name": "BinaryAccuracy", "lower_bound": 0.6, "max_regression": 0.0},
            {"class_name": "MeanAbsoluteError", "upper_bound": 1.0,
             "higher_is_better": False, "max_regression": 0.05},
            {"class_name": "ExampleCount"},
        ],
        slicing_features=[["trip_start_hour"]],
    )
    proto = build_eval_config(config)
    spec = proto.model_specs[0]
    assert (spec.label_key, spec.signature_name) == ("tips_xf", "serving_default")
    assert list(spec.preprocessing_function_names) == ["transform_features"]
    accuracy, mae, count = proto.metrics_specs[0].metrics
    assert accuracy.threshold.value_threshold.lower_bound.value == 0.6
    assert not accuracy.threshold.value_threshold.HasField("upper_bound")
    # TFMA compares strictly: 'not worse than the baseline' is -1e-10, as in TFX's taxi example
    assert accuracy.threshold.change_threshold.absolute.value == pytest.approx(-1e-10, abs=1e-15)
    from tensorflow_model_analysis.proto import config_pb2

    assert accuracy.threshold.change_threshold.direction == config_pb2.MetricDirection.HIGHER_IS_BETTER
    assert mae.threshold.value_threshold.upper_bound.value == 1.0
    assert mae.threshold.change_threshold.absolute.value == pytest.approx(0.05)
    assert mae.threshold.change_threshold.direction == config_pb2.MetricDirection.LOWER_IS_BETTER
    assert not count.HasField("threshold")
    assert len(proto.slicing_specs) == 2
    assert list(proto.slicing_specs[1].feature_keys) == ["trip_start_hour"]


def test_a_model_is_never_its_own_baseline():
    from tasks.evaluator.core import comparable_baseline

    model = ArtifactRef(type_name="Model", uri="/root/Trainer/a/model")
    trainer = StageOutput(stage="Trainer", fingerprint="a", artifacts={"model": model})
    assert comparable_baseline(model, trainer) is None
    other = ArtifactRef(type_name="Model", uri="/root/Trainer/b/model")
    assert comparable_baseline(other, trainer) == other
    assert comparable_baseline(None, trainer) is None


# Artifact references ----------------------------------------------------------------------
def test_artifact_reference_round_trips_a_tfx_artifact():
    from tfx.types import standard_artifacts

    examples = standard_artifacts.Examples()
    examples.uri = "/root/ExampleGen/abc/examples"
    examples.split_names = '["train", "eval"]'
    examples.set_string_custom_property("payload_format", "FORMAT_TF_EXAMPLE")
    ref = ArtifactRef.from_tfx(examples)
    assert ref.split_names == ["train", "eval"]
    assert ref.split_uri("eval") == "/root/ExampleGen/abc/examples/Split-eval"
    again = ArtifactRef.model_validate_json(ref.model_dump_json()).to_tfx()
    assert again.uri == examples.uri and again.split_names == examples.split_names
    assert again.get_string_custom_property("payload_format") == "FORMAT_TF_EXAMPLE"
    assert ArtifactRef.from_tfx(standard_artifacts.Schema()).split_names == []
