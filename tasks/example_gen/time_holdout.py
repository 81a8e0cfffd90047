"""Time-holdout split for any ExampleGen executor: the last N days of data become `eval`.

Imported only inside the ExampleGen task body (it imports Beam, TFX and TensorFlow).
"""

from __future__ import annotations

from typing import Any, Dict

import apache_beam as beam
import tensorflow as tf
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.components.example_gen.csv_example_gen import executor as csv_executor
from tfx.components.example_gen.custom_executors import parquet_executor
from tfx.components.example_gen.import_example_gen import executor as import_executor
from tfx.proto import example_gen_pb2
from tfx.utils import proto_utils

SECONDS_PER_DAY = 86_400


def example_timestamp(record: Any, column: str) -> int:
    """Integer timestamp of a tf.Example (or its serialized bytes) in `column`."""
    example = tf.train.Example.FromString(record) if isinstance(record, bytes) else record
    feature = example.features.feature.get(column)
    if feature is None:
        raise ValueError(f"timestamp column {column!r} is missing from a row")
    values = list(feature.int64_list.value) or [int(v) for v in feature.float_list.value]
    if not values:
        raise ValueError(f"timestamp column {column!r} is empty in a row")
    return int(values[0])


def holdout_partition(record: Any, num_partitions: int, column: str, cutoff: int) -> int:
    """0 (train) for rows at or before the cutoff, 1 (eval) after it."""
    del num_partitions
    return 1 if example_timestamp(record, column) > cutoff else 0


class _TimeHoldoutMixin:
    """Replaces hash buckets with a cutoff at max(timestamp) − holdout_days."""

    def GenerateExamplesByBeam(  # noqa: N802 - TFX's method name
        self, pipeline: beam.Pipeline, exec_properties: Dict[str, Any]
    ) -> Dict[str, beam.pvalue.PCollection]:
        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(exec_properties["input_config"], input_config)
        column = exec_properties["timestamp_column"]
        holdout_seconds = int(exec_properties["holdout_days"]) * SECONDS_PER_DAY
        exec_properties["_beam_pipeline_args"] = self._beam_pipeline_args or []

        to_records = self.GetInputSourceToExamplePTransform()
        records = pipeline | "InputToRecord" >> to_records(
            exec_properties, input_config.splits[0].pattern
        )
        cutoff = (
            records
            | "Timestamp" >> beam.Map(example_timestamp, column)
            | "Latest" >> beam.CombineGlobally(max)
            | "Cutoff" >> beam.Map(lambda latest: latest - holdout_seconds)
        )
        train, evaluation = records | "SplitByTime" >> beam.Partition(
            holdout_partition, 2, column=column, cutoff=beam.pvalue.AsSingleton(cutoff)
        )
        return {"train": train, "eval": evaluation}


class CsvTimeHoldoutExecutor(_TimeHoldoutMixin, csv_executor.Executor):
    """CSV ExampleGen with a time holdout."""


class ParquetTimeHoldoutExecutor(_TimeHoldoutMixin, parquet_executor.Executor):
    """Parquet ExampleGen with a time holdout."""


class TfrecordTimeHoldoutExecutor(_TimeHoldoutMixin, import_executor.Executor):
    """TFRecord (ImportExampleGen) with a time holdout."""


def _bigquery_executor() -> type:
    from tfx.extensions.google_cloud_big_query.example_gen import executor as bq_executor

    return bq_executor.Executor


class BigqueryTimeHoldoutExecutor(_TimeHoldoutMixin, BaseExampleGenExecutor):
    """BigQuery ExampleGen with a time holdout (needs GCP; not exercised here)."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:  # noqa: N802
        return _bigquery_executor()().GetInputSourceToExamplePTransform()
