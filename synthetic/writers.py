"""Streaming shard writers: CSV, Parquet and TFRecord of tf.train.Example.

Each writer appends row chunks to one open file; ``ShardedWriter`` rolls over to the next
shard every ``rows_per_file`` rows. Shards are written under hidden temporary names and only
renamed to ``data-XXXXX-of-YYYYY.<ext>`` by ``ShardedWriter.publish`` after every shard is
complete, so an input glob such as ``out_dir/*.csv`` never matches a half-written file.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from synthetic.config import OutputFormat
from synthetic.sampling import SCHEMA, Chunk

# The Parquet default, which every reader (Beam's parquetio included) handles.
PARQUET_COMPRESSION = "snappy"
# Rows handed to a shard writer at once (and Parquet row-group size). Sampling chunks can be
# far larger, since they are plain numpy arrays; the Python lists the CSV and TFRecord
# writers need cost ~100 bytes per value, so they are built this many rows at a time.
WRITE_BATCH_ROWS = 50_000


class ShardFile(Protocol):
    """One output file being appended to."""

    def write(self, chunk: Chunk) -> None:
        """Append the chunk's rows."""

    def close(self) -> None:
        """Flush and close the file."""


class CsvShard:
    """CSV with a header row, unquoted ids, ``\\n`` line endings."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file, lineterminator="\n")
        self._writer.writerow(SCHEMA.names)

    def write(self, chunk: Chunk) -> None:
        """Append rows as CSV lines."""
        self._writer.writerows(zip(*chunk.to_pylists()))

    def close(self) -> None:
        """Close the file."""
        self._file.close()


class ParquetShard:
    """Parquet with one row group per appended batch (at most ``WRITE_BATCH_ROWS`` rows)."""

    def __init__(self, path: Path) -> None:
        self._writer = pq.ParquetWriter(str(path), SCHEMA, compression=PARQUET_COMPRESSION)

    def write(self, chunk: Chunk) -> None:
        """Append the rows as one row group."""
        self._writer.write_table(chunk.to_arrow(), row_group_size=chunk.num_rows)

    def close(self) -> None:
        """Write the footer and close the file."""
        self._writer.close()


class TFRecordShard:
    """Uncompressed TFRecord of tf.train.Example: str as bytes, int as int64, rating as float."""

    def __init__(self, path: Path) -> None:
        # TensorFlow takes tens of seconds to import; only this format pays for it.
        import tensorflow as tf

        self._tf = tf
        self._writer = tf.io.TFRecordWriter(str(path))

    def write(self, chunk: Chunk) -> None:
        """Append one serialized tf.train.Example per row."""
        train = self._tf.train
        columns = dict(zip(SCHEMA.names, chunk.to_pylists()))
        string_columns = [f.name for f in SCHEMA if pa.types.is_string(f.type)]
        int_columns = [f.name for f in SCHEMA if pa.types.is_integer(f.type)]
        float_columns = [f.name for f in SCHEMA if pa.types.is_floating(f.type)]
        for i in range(chunk.num_rows):
            feature = {}
            for name in string_columns:
                value = columns[name][i].encode("utf-8")
                feature[name] = train.Feature(bytes_list=train.BytesList(value=[value]))
            for name in int_columns:
                feature[name] = train.Feature(int64_list=train.Int64List(value=[columns[name][i]]))
            for name in float_columns:
                feature[name] = train.Feature(float_list=train.FloatList(value=[columns[name][i]]))
            example = train.Example(features=train.Features(feature=feature))
            # Map fields have no canonical wire order; deterministic=True sorts them so that
            # identical data gives identical bytes.
            self._writer.write(example.SerializeToString(deterministic=True))

    def close(self) -> None:
        """Flush and close the file."""
        self._writer.close()


_SHARD_TYPES: dict[str, type] = {
    "csv": CsvShard,
    "parquet": ParquetShard,
    "tfrecord": TFRecordShard,
}


def shard_name(index: int, num_files: int, extension: str) -> str:
    """Final file name of shard ``index`` of ``num_files``, e.g. ``data-00000-of-00004.csv``."""
    return f"data-{index:05d}-of-{num_files:05d}.{extension}"


def temp_name(final_name: str) -> str:
    """Hidden, extension-less name a shard lives under until it is published."""
    return f".{final_name}.tmp"


class ShardedWriter:
    """Splits a stream of chunks into ``num_files`` shards of at most ``rows_per_file`` rows."""

    def __init__(
        self,
        out_dir: Path,
        file_format: OutputFormat,
        rows_per_file: int,
        num_files: int,
    ) -> None:
        self._out_dir = out_dir
        self._shard_type = _SHARD_TYPES[file_format]
        self._extension = file_format
        self._rows_per_file = rows_per_file
        self._num_files = num_files
        self._current: ShardFile | None = None
        self._rows_in_current = 0
        self.final_names: list[str] = []
        self.rows_per_shard: list[int] = []

    @property
    def temp_paths(self) -> list[Path]:
        """Temporary paths of every shard opened so far."""
        return [self._out_dir / temp_name(name) for name in self.final_names]

    def write(self, chunk: Chunk) -> None:
        """Append a chunk, splitting it across shard boundaries as needed."""
        offset = 0
        while offset < chunk.num_rows:
            if self._current is None or self._rows_in_current == self._rows_per_file:
                self._open_next()
            take = min(
                chunk.num_rows - offset,
                self._rows_per_file - self._rows_in_current,
                WRITE_BATCH_ROWS,
            )
            self._current.write(chunk.slice(offset, offset + take))
            self._rows_in_current += take
            self.rows_per_shard[-1] += take
            offset += take

    def _open_next(self) -> None:
        self._close_current()
        index = len(self.final_names)
        if index >= self._num_files:
            raise RuntimeError(f"more rows than {self._num_files} shards can hold")
        name = shard_name(index, self._num_files, self._extension)
        self.final_names.append(name)
        self.rows_per_shard.append(0)
        self._current = self._shard_type(self._out_dir / temp_name(name))
        self._rows_in_current = 0

    def _close_current(self) -> None:
        if self._current is not None:
            self._current.close()
            self._current = None

    def close(self) -> None:
        """Close the open shard; checks that exactly ``num_files`` shards were written."""
        self._close_current()
        if len(self.final_names) != self._num_files:
            raise RuntimeError(
                f"wrote {len(self.final_names)} shards, expected {self._num_files}"
            )

    def abort(self) -> None:
        """Close quietly and delete every temporary shard (used when generation fails)."""
        try:
            self._close_current()
        finally:
            for path in self.temp_paths:
                path.unlink(missing_ok=True)

    def publish(self) -> list[Path]:
        """Rename every closed shard to its final name; returns the final paths in order."""
        final_paths = []
        for name in self.final_names:
            final = self._out_dir / name
            os.replace(self._out_dir / temp_name(name), final)
            final_paths.append(final)
        return final_paths
