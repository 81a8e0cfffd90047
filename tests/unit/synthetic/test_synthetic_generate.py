"""generate(): files, columns, row counts, determinism, invariants and crash safety."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from synthetic_helpers import SMALL, read_csv_columns, read_parquet_columns

from synthetic import (
    COLUMNS,
    SyntheticConfig,
    SyntheticDataset,
    generate,
    load_planted,
    read_dataset,
)
from synthetic import core as synthetic_core

EXPECTED_SHARD_ROWS = [700, 700, 700, 700, 200]


def _all_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_csv_shards_hold_exact_rows_and_columns(csv_dataset: SyntheticDataset) -> None:
    names = [p.name for p in csv_dataset.files]
    assert names == [f"data-{i:05d}-of-00005.csv" for i in range(5)]
    # The glob an ExampleGen would use sees exactly the data files, not the factors.
    assert sorted(csv_dataset.out_dir.glob("*.csv")) == csv_dataset.files
    per_file = [len(read_csv_columns([path])["buyer_id"]) for path in csv_dataset.files]
    assert per_file == EXPECTED_SHARD_ROWS
    columns = read_csv_columns(csv_dataset.files)
    assert tuple(columns) == COLUMNS
    assert csv_dataset.rows == 3_000


def test_parquet_shards_hold_exact_rows_and_schema(parquet_dataset: SyntheticDataset) -> None:
    assert sorted(parquet_dataset.out_dir.glob("*.parquet")) == parquet_dataset.files
    per_file = [pq.ParquetFile(path).metadata.num_rows for path in parquet_dataset.files]
    assert per_file == EXPECTED_SHARD_ROWS
    schema = pq.read_schema(parquet_dataset.files[0])
    assert tuple(schema.names) == COLUMNS
    assert [str(schema.field(name).type) for name in COLUMNS] == [
        "string", "string", "string", "string", "int64", "int64", "double"
    ]


def test_csv_and_parquet_hold_the_same_rows(
    csv_dataset: SyntheticDataset, parquet_columns: dict[str, np.ndarray]
) -> None:
    csv_columns = read_csv_columns(csv_dataset.files)
    for name in ("buyer_id", "product_id", "category", "city"):
        assert csv_columns[name] == parquet_columns[name].tolist()
    for name in ("timestamp", "quantity"):
        assert [int(v) for v in csv_columns[name]] == parquet_columns[name].tolist()
    assert [float(v) for v in csv_columns["rating"]] == parquet_columns["rating"].tolist()


def test_manifest_and_read_dataset_describe_the_files(csv_dataset: SyntheticDataset) -> None:
    manifest = json.loads(csv_dataset.manifest_path.read_text())
    assert manifest["rows"] == 3_000
    assert [f["name"] for f in manifest["files"]] == [p.name for p in csv_dataset.files]
    assert [f["rows"] for f in manifest["files"]] == EXPECTED_SHARD_ROWS
    assert SyntheticConfig.model_validate(manifest["config"]) == csv_dataset.config
    assert read_dataset(csv_dataset.out_dir) == csv_dataset
    assert csv_dataset.factors_path == csv_dataset.out_dir / "_planted" / "planted_factors.npz"


def test_no_temporary_files_remain(
    csv_dataset: SyntheticDataset, parquet_dataset: SyntheticDataset
) -> None:
    for dataset in (csv_dataset, parquet_dataset):
        data_files = [p.name for p in dataset.files]
        expected = ["_planted/planted_factors.npz", "manifest.json"] + data_files
        assert _all_files(dataset.out_dir) == sorted(expected), dataset.format


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_same_seed_gives_byte_identical_output(tmp_path: Path, file_format: str) -> None:
    config = SyntheticConfig(format=file_format, **SMALL)
    first = generate(config, tmp_path / "a")
    second = generate(config, tmp_path / "b")
    names = _all_files(first.out_dir)
    assert names == _all_files(second.out_dir)
    for name in names:
        assert (first.out_dir / name).read_bytes() == (second.out_dir / name).read_bytes(), name


def test_different_seed_gives_different_data(
    tmp_path: Path, parquet_dataset: SyntheticDataset, parquet_columns: dict[str, np.ndarray]
) -> None:
    other = generate(SyntheticConfig(format="parquet", **{**SMALL, "seed": 8}), tmp_path)
    other_columns = read_parquet_columns(other.files)
    assert len(other_columns["buyer_id"]) == len(parquet_columns["buyer_id"])
    assert not np.array_equal(other_columns["buyer_id"], parquet_columns["buyer_id"])
    assert not np.array_equal(other_columns["timestamp"], parquet_columns["timestamp"])
    assert not np.array_equal(
        load_planted(other.factors_path).buyer_factors,
        load_planted(parquet_dataset.factors_path).buyer_factors,
    )


def test_category_is_fixed_per_product_and_city_per_buyer(
    parquet_dataset: SyntheticDataset, parquet_columns: dict[str, np.ndarray]
) -> None:
    planted = load_planted(parquet_dataset.factors_path)
    products = planted.product_index(parquet_columns["product_id"])
    buyers = planted.buyer_index(parquet_columns["buyer_id"])
    np.testing.assert_array_equal(parquet_columns["category"], planted.product_category[products])
    np.testing.assert_array_equal(parquet_columns["city"], planted.buyer_city[buyers])
    # And the mapping is a function even without the planted file to compare against.
    pairs = set(zip(parquet_columns["product_id"].tolist(), parquet_columns["category"].tolist()))
    assert len(pairs) == len(set(parquet_columns["product_id"].tolist()))


def test_values_stay_in_their_ranges(
    parquet_dataset: SyntheticDataset, parquet_columns: dict[str, np.ndarray]
) -> None:
    config = parquet_dataset.config
    timestamps = parquet_columns["timestamp"]
    assert timestamps.min() >= config.start_timestamp
    assert timestamps.max() < config.end_timestamp
    # Spread over the whole window, so a "last N days" holdout is non-empty.
    last_week = timestamps >= config.end_timestamp - 7 * 86_400
    assert 0.04 < last_week.mean() < 0.12
    assert parquet_columns["quantity"].min() >= 1
    assert parquet_columns["rating"].min() >= 1.0
    assert parquet_columns["rating"].max() <= 5.0
    assert all(re.fullmatch(r"B\d{6}", v) for v in parquet_columns["buyer_id"].tolist())
    assert all(re.fullmatch(r"P\d{6}", v) for v in parquet_columns["product_id"].tolist())
    assert all(re.fullmatch(r"cat_\d{2}", v) for v in parquet_columns["category"].tolist())
    assert all(re.fullmatch(r"city_\d{2}", v) for v in parquet_columns["city"].tolist())


def test_quantity_and_rating_increase_with_affinity(
    parquet_dataset: SyntheticDataset, parquet_columns: dict[str, np.ndarray]
) -> None:
    planted = load_planted(parquet_dataset.factors_path)
    buyers = planted.buyer_index(parquet_columns["buyer_id"])
    products = planted.product_index(parquet_columns["product_id"])
    affinity = planted.affinity_by_index(buyers)[np.arange(len(buyers)), products]
    high = affinity > np.median(affinity)
    quantity, rating = parquet_columns["quantity"], parquet_columns["rating"]
    assert quantity[high].mean() > quantity[~high].mean() + 0.5
    assert rating[high].mean() > rating[~high].mean() + 0.2


@pytest.mark.parametrize("rows", [2_500, 4_500])
def test_more_rows_extend_fewer_rows(
    tmp_path: Path, parquet_columns: dict[str, np.ndarray], rows: int
) -> None:
    # Chunks are seeded by index and each column is its own stream, so a data set's rows are
    # a prefix of any larger one's, even where the last chunk is partial (2_500 rows).
    other = generate(SyntheticConfig(format="parquet", **{**SMALL, "rows": rows}), tmp_path)
    other_columns = read_parquet_columns(other.files)
    shared = min(rows, 3_000)
    assert len(other_columns["buyer_id"]) == rows
    for name, values in parquet_columns.items():
        np.testing.assert_array_equal(other_columns[name][:shared], values[:shared])


def test_existing_data_set_is_not_mixed_with_a_new_one(tmp_path: Path) -> None:
    generate(SyntheticConfig(rows=3_000, rows_per_file=1_000), tmp_path)
    with pytest.raises(FileExistsError, match="overwrite"):
        generate(SyntheticConfig(rows=3_000, rows_per_file=1_500), tmp_path)
    replaced = generate(SyntheticConfig(rows=3_000, rows_per_file=1_500), tmp_path, overwrite=True)
    # The three old shards are gone, only the two new ones match the input glob.
    assert sorted(tmp_path.glob("*.csv")) == replaced.files
    assert len(replaced.files) == 2


def test_failed_generation_leaves_no_partial_or_complete_looking_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_chunk = synthetic_core.ChunkSampler.chunk

    def failing_chunk(self, chunk_index: int):
        if chunk_index == 2:
            raise RuntimeError("disk full")
        return real_chunk(self, chunk_index)

    monkeypatch.setattr(synthetic_core.ChunkSampler, "chunk", failing_chunk)
    with pytest.raises(RuntimeError, match="disk full"):
        generate(SyntheticConfig(**SMALL), tmp_path)
    assert _all_files(tmp_path) == []
    with pytest.raises(FileNotFoundError):
        read_dataset(tmp_path)
