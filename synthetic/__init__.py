"""Synthetic B2B interaction data from planted latent factors (see README.md)."""

from synthetic.config import OutputFormat, SyntheticConfig
from synthetic.core import SyntheticDataset, SyntheticFile, generate, read_dataset
from synthetic.oracle import (
    expected_oracle_recall_at_k,
    oracle_rating,
    oracle_recall_at_k,
    oracle_top_k,
)
from synthetic.planted import PlantedFactors, load_planted, plant_factors
from synthetic.sampling import COLUMNS, SCHEMA

__all__ = [
    "COLUMNS",
    "SCHEMA",
    "OutputFormat",
    "PlantedFactors",
    "SyntheticConfig",
    "SyntheticDataset",
    "SyntheticFile",
    "expected_oracle_recall_at_k",
    "generate",
    "load_planted",
    "oracle_rating",
    "oracle_recall_at_k",
    "oracle_top_k",
    "plant_factors",
    "read_dataset",
]
