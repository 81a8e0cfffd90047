"""Shared fixtures: small, seeded data sets generated once per test session."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic_helpers import SMALL, read_parquet_columns

from synthetic import SyntheticConfig, SyntheticDataset, generate

@pytest.fixture(scope="session")
def csv_dataset(tmp_path_factory: pytest.TempPathFactory) -> SyntheticDataset:
    """A 3_000-row CSV data set in five shards."""
    return generate(SyntheticConfig(format="csv", **SMALL), tmp_path_factory.mktemp("csv"))


@pytest.fixture(scope="session")
def parquet_dataset(tmp_path_factory: pytest.TempPathFactory) -> SyntheticDataset:
    """The same rows as ``csv_dataset``, as Parquet."""
    return generate(SyntheticConfig(format="parquet", **SMALL), tmp_path_factory.mktemp("parquet"))


@pytest.fixture(scope="session")
def parquet_columns(parquet_dataset: SyntheticDataset) -> dict[str, np.ndarray]:
    """Columns of ``parquet_dataset``."""
    return read_parquet_columns(parquet_dataset.files)
