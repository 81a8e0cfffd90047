"""ExampleGen on the streaming path: units of input → a standard TFX Examples artifact.

Each unit becomes one gzipped TFRecord shard per split,
`Split-<name>/data_tfrecord-<unit>-of-<units>.gz` (TFX's own file names), so readers that
glob a split's directory (TFXIO, the Trainer, TFMA) read it as they read Beam's output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from retrain.adapters.streaming import encode, sources
from retrain.adapters.streaming.pool import run_units
from retrain.adapters.streaming.records import RecordWriter, read_records
from retrain.adapters.streaming.sources import TfrecordUnit, Unit
from retrain.domain.refs import ArtifactRef

FILE_NAME = "data_tfrecord"
# Units are never cut smaller than this: below it, starting a worker costs more than it saves.
MIN_UNIT_BYTES = 8 << 20


@dataclass(frozen=True)
class SplitRule:
    """TFX's hash split: split names, their hash buckets, an optional partition feature."""

    names: tuple[str, ...]
    buckets: tuple[int, ...]
    partition_feature: str | None = None


@dataclass(frozen=True)
class ConvertJob:
    """One unit of input and where its shards go."""

    unit: Unit
    index: int
    units: int
    examples_uri: str
    rule: SplitRule


@dataclass(frozen=True)
class UnitResult:
    """Rows a unit wrote per split, and the input bytes it covered."""

    rows: dict[str, int]
    input_bytes: int


def shard_path(examples_uri: str, split: str, index: int, units: int) -> str:
    """Where unit `index` writes split `split`."""
    return f"{examples_uri.rstrip('/')}/Split-{split}/{FILE_NAME}-{index:05d}-of-{units:05d}.gz"


def _keys(records: list[bytes], entries: dict[str, list[bytes]] | None,
          rule: SplitRule) -> Sequence[bytes]:
    if rule.partition_feature is None:
        return records
    if entries is None:  # TFRecord input: the feature must be parsed out of each record
        import tensorflow as tf

        keys = []
        for record in records:
            feature = tf.train.Example.FromString(record).features.feature
            if rule.partition_feature not in feature:
                raise ValueError(f"partition feature {rule.partition_feature!r} is missing")
            keys.append(feature[rule.partition_feature].SerializeToString(deterministic=True))
        return keys
    if rule.partition_feature not in entries:
        raise ValueError(f"partition feature {rule.partition_feature!r} is not a column")
    return [encode.feature_value(entry) for entry in entries[rule.partition_feature]]


def convert_unit(job: ConvertJob) -> UnitResult:
    """Read one unit, encode and split its rows, write its shard of every split."""
    rule = job.rule
    totals = encode.cumulative(rule.buckets)
    writers = [RecordWriter(shard_path(job.examples_uri, name, job.index, job.units))
               for name in rule.names]
    try:
        if isinstance(job.unit, TfrecordUnit):
            batch: list[bytes] = []
            for record in read_records(job.unit.path):
                batch.append(record)
                if len(batch) == 65_536:
                    _write(batch, None, rule, totals, writers)
                    batch = []
            _write(batch, None, rule, totals, writers)
        else:
            encoder = encode.ExampleEncoder()
            for record_batch in sources.batches(job.unit):
                records, entries = encoder.encode(encode.feature_lists(record_batch))
                _write(records, entries, rule, totals, writers)
    except BaseException:
        for writer in writers:
            writer.abort()
        raise
    for writer in writers:
        writer.close()
    return UnitResult(
        rows={name: writer.records for name, writer in zip(rule.names, writers)},
        input_bytes=job.unit.size,
    )


def _write(records: list[bytes], entries: dict[str, list[bytes]] | None, rule: SplitRule,
           totals: list[int], writers: list[RecordWriter]) -> None:
    if not records:
        return
    parts: list[list[bytes]] = [[] for _ in writers]
    for record, split in zip(records, encode.split_of(_keys(records, entries, rule), totals)):
        parts[split].append(record)
    for writer, part in zip(writers, parts):
        writer.write_batch(part)


def generate_examples(
    format_name: str,
    files: list[str],
    examples_uri: str,
    rule: SplitRule,
    workers: int | None = None,
    unit_bytes: int = sources.UNIT_BYTES,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[ArtifactRef, dict[str, int]]:
    """Write the Examples artifact at `examples_uri`; return it and its rows per split.

    Input smaller than one unit per worker is cut finer (down to `MIN_UNIT_BYTES`), so that
    every core works on a mid-sized file too. `progress(done_bytes, total_bytes)` is called
    as each unit finishes.
    """
    from retrain.adapters.streaming.csv_units import file_size
    from retrain.adapters.streaming.pool import worker_count

    total = sum(file_size(path) for path in files)
    per_worker = -(-total // worker_count(workers, 1 << 20))
    units = sources.plan(format_name, files, max(MIN_UNIT_BYTES, min(unit_bytes, per_worker)))
    jobs = [ConvertJob(unit=unit, index=index, units=len(units), examples_uri=examples_uri,
                       rule=rule) for index, unit in enumerate(units)]
    results = run_units(convert_unit, jobs, workers, progress, size=lambda job: job.unit.size)
    rows = {name: sum(result.rows[name] for result in results) for name in rule.names}
    return examples_artifact(examples_uri, rule.names), rows


def examples_artifact(uri: str, splits: Sequence[str]) -> ArtifactRef:
    """The Examples artifact as TFX's ExampleGen leaves it (payload and file format set)."""
    from tfx.components.util import examples_utils
    from tfx.proto import example_gen_pb2
    from tfx.types import artifact_utils, standard_artifacts

    artifact: Any = standard_artifacts.Examples()
    artifact.uri = uri
    artifact.split_names = artifact_utils.encode_split_names(list(splits))
    artifact.span = 0
    examples_utils.set_payload_format(artifact, example_gen_pb2.FORMAT_TF_EXAMPLE)
    examples_utils.set_file_format(artifact, "tfrecords_gzip")
    return ArtifactRef.from_tfx(artifact)
