"""Units of CSV, Parquet and TFRecord inputs, and the record batches or records in each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Union

from retrain.adapters.streaming import csv_units
from retrain.adapters.streaming.csv_units import CsvUnit, DataFormatError
from retrain.adapters.streaming.records import read_records

UNIT_BYTES = 64 << 20
PARQUET_BATCH_ROWS = 65_536


@dataclass(frozen=True)
class ParquetUnit:
    """Row groups [first, last) of one Parquet file."""

    path: str
    first: int
    last: int
    size: int


@dataclass(frozen=True)
class TfrecordUnit:
    """One file of serialized tf.Examples (gzip when its name ends in .gz)."""

    path: str
    size: int


Unit = Union[CsvUnit, ParquetUnit, TfrecordUnit]


def plan(format_name: str, files: list[str], unit_bytes: int = UNIT_BYTES) -> list[Unit]:
    """Every unit of the input files, in file order."""
    if format_name == "csv":
        return list(csv_units.plan_files(files, unit_bytes))
    units: list[Unit] = []
    for path in files:
        if format_name == "parquet":
            units.extend(_parquet_units(path, unit_bytes))
        elif format_name == "tfrecord":
            units.append(TfrecordUnit(path=path, size=csv_units.file_size(path)))
        else:
            raise ValueError(f"the streaming data path does not read {format_name!r} input")
    return units


def _parquet_units(path: str, unit_bytes: int) -> list[ParquetUnit]:
    import fsspec
    import pyarrow.parquet as pq

    with fsspec.open(path, "rb") as handle:
        metadata = pq.ParquetFile(handle).metadata
    units, first, size = [], 0, 0
    for group in range(metadata.num_row_groups):
        size += metadata.row_group(group).total_byte_size
        if size >= unit_bytes:
            units.append(ParquetUnit(path=path, first=first, last=group + 1, size=size))
            first, size = group + 1, 0
    if first < metadata.num_row_groups:
        units.append(ParquetUnit(path=path, first=first, last=metadata.num_row_groups, size=size))
    return units


def _parquet_column(name: str, column: Any) -> Any:
    """A Parquet column as TFX's Parquet reader types it: int64, float32 or bytes."""
    import pyarrow as pa

    kind = column.type
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        return column.cast(pa.int64())
    if pa.types.is_floating(kind):
        return column.cast(pa.float32())
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind):
        return column.cast(pa.binary())
    raise DataFormatError(
        f"column {name!r} has Parquet type {kind}, which ExampleGen cannot turn into a "
        "tf.Example feature (integers, floats, booleans and strings can be)"
    )


def batches(unit: Unit) -> Iterator[Any]:
    """Record batches of a CSV or Parquet unit, typed int64 / float32 / binary."""
    if isinstance(unit, CsvUnit):
        yield from csv_units.batches(unit)
        return
    import fsspec
    import pyarrow as pa
    import pyarrow.parquet as pq

    with fsspec.open(unit.path, "rb") as handle:
        parquet = pq.ParquetFile(handle)
        groups = list(range(unit.first, unit.last))
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, row_groups=groups):
            yield pa.RecordBatch.from_arrays(
                [_parquet_column(name, batch.column(name)) for name in batch.schema.names],
                batch.schema.names,
            )


def records(unit: TfrecordUnit) -> Iterator[bytes]:
    """Serialized records of a TFRecord unit."""
    yield from read_records(unit.path)
