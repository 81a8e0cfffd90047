"""Test helpers: the small config used throughout, and plain readers (csv module, pyarrow)
that read shards back independently of the generator."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

# 3_000 rows in chunks of 1_000 and shards of 700: chunks straddle shard boundaries and the
# last shard is partial, which is where off-by-one errors in the writers would show.
SMALL = dict(rows=3_000, rows_per_file=700, chunk_rows=1_000, seed=7)


def read_csv_columns(paths: list[Path]) -> dict[str, list[str]]:
    """All rows of the given CSV shards, column-wise, as strings; checks headers match."""
    columns: dict[str, list[str]] | None = None
    for path in paths:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = next(reader)
            if columns is None:
                columns = {name: [] for name in header}
            assert list(columns) == header, f"{path.name} has a different header"
            for row in reader:
                for name, value in zip(header, row):
                    columns[name].append(value)
    assert columns is not None
    return columns


def read_parquet_columns(paths: list[Path]) -> dict[str, np.ndarray]:
    """All rows of the given Parquet shards, column-wise, as numpy arrays."""
    tables = [pq.read_table(path) for path in paths]
    names = tables[0].schema.names
    return {
        name: np.concatenate([np.array(t.column(name).to_pylist()) for t in tables])
        for name in names
    }
