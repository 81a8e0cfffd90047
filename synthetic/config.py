"""Configuration of the synthetic B2B interaction generator."""

from __future__ import annotations

import datetime as dt
import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

OutputFormat = Literal["csv", "parquet", "tfrecord"]

# Thousands of shards would make ExampleGen's file listing the bottleneck, not the data.
MAX_FILES = 10_000


class SyntheticConfig(BaseModel):
    """Everything that determines a synthetic data set; same config, same bytes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rows: int = Field(
        default=10_000,
        ge=1_000,
        le=100_000_000,
        description="Number of interaction rows to generate across all output files (up to 100M: "
        "a ~4.8 GB CSV; generation streams in chunks).",
    )
    buyers: int = Field(
        default=500,
        ge=1,
        le=1_000_000,
        description="Number of distinct buyers (companies placing orders).",
    )
    products: int = Field(
        default=200,
        ge=1,
        le=1_000_000,
        description="Number of distinct products in the catalogue.",
    )
    categories: int = Field(
        default=12,
        ge=1,
        description="Number of product categories; every category gets at least one product.",
    )
    cities: int = Field(
        default=8,
        ge=1,
        description="Number of buyer cities; every city gets at least one buyer.",
    )
    latent_dim: int = Field(
        default=8,
        ge=1,
        le=256,
        description="Dimension of the planted buyer and product factor vectors.",
    )
    seed: int = Field(
        default=0,
        ge=0,
        description="Seed of every random draw; the knob for a different sample of the same shape.",
    )
    start_date: dt.date = Field(
        default=dt.date(2024, 1, 1),
        description="First day (UTC, inclusive) of the interaction history.",
    )
    days: int = Field(
        default=90,
        ge=1,
        le=3_650,
        description="Length of the history in days; timestamps are uniform over it, so a "
        "'last N days for eval' time holdout gets about N/days of the rows.",
    )
    format: OutputFormat = Field(
        default="csv",
        description="Output file format: csv (with header), parquet, or tfrecord "
        "(uncompressed, tf.train.Example).",
    )
    rows_per_file: int = Field(
        default=250_000,
        ge=100,
        description="Maximum rows per output file (shard); the last shard holds the remainder.",
    )
    chunk_rows: int = Field(
        default=200_000,
        ge=1_000,
        le=5_000_000,
        description="Rows sampled per in-memory chunk (~150 bytes each, so the default adds "
        "~30 MB); bounds peak memory independently of rows. Product-choice CDFs are built once "
        "per distinct buyer per chunk, so for catalogues of 10k+ buyers x 10k+ products raise it "
        "to ~1_000_000 for several times the speed. It is part of the random stream: changing "
        "it changes the sampled rows (not the planted factors).",
    )
    temperature: float = Field(
        default=1.0,
        gt=0.0,
        le=100.0,
        description="Softmax temperature of product choice; lower means buyers stick more "
        "closely to their highest-affinity products.",
    )
    popularity_scale: float = Field(
        default=0.75,
        ge=0.0,
        le=10.0,
        description="Standard deviation of the per-product popularity bias added to affinity.",
    )
    product_popularity_zipf: float | None = Field(
        default=None,
        ge=0.0,
        le=5.0,
        description="Zipf exponent s of product popularity. Products get popularity ranks "
        "1..products in a seeded random order, and every buyer's choice weight of the product "
        "of rank r is multiplied by r^-s (its popularity bias gains -s * temperature * ln r), "
        "so with s around 1 a few products take a large share of the interactions. The oracle "
        "ranks by the same affinity, so it stays exact. None: no Zipf term (the data of a "
        "config without this field, byte for byte).",
    )
    category_boost: float = Field(
        default=0.0,
        ge=-10.0,
        le=10.0,
        description="Added to the popularity of every product of the first category (cat_00): "
        "plants a shift of the category mix between two data sets of one seed (drift tests).",
    )
    quantity_scale: float = Field(
        default=1.0,
        gt=0.0,
        le=100.0,
        description="Multiplies every quantity (rounded, at least 1): plants a shift of a "
        "numeric feature between two data sets of one seed (drift tests).",
    )
    activity_sigma: float = Field(
        default=1.0,
        ge=0.0,
        le=5.0,
        description="Sigma of the lognormal buyer activity weights; 0 makes all buyers "
        "equally active.",
    )

    @model_validator(mode="after")
    def _check_relations(self) -> "SyntheticConfig":
        if self.categories > self.products:
            raise ValueError(
                f"categories ({self.categories}) must be <= products ({self.products}): "
                "every category needs at least one product"
            )
        if self.cities > self.buyers:
            raise ValueError(
                f"cities ({self.cities}) must be <= buyers ({self.buyers}): "
                "every city needs at least one buyer"
            )
        if self.num_files > MAX_FILES:
            raise ValueError(
                f"rows_per_file ({self.rows_per_file}) gives {self.num_files} files for "
                f"{self.rows} rows; at most {MAX_FILES} are allowed, raise rows_per_file"
            )
        return self

    @property
    def num_files(self) -> int:
        """Number of output shards for this config."""
        return math.ceil(self.rows / self.rows_per_file)

    @property
    def start_timestamp(self) -> int:
        """Unix seconds (UTC) of the start of the history window, inclusive."""
        start = dt.datetime.combine(self.start_date, dt.time(), tzinfo=dt.timezone.utc)
        return int(start.timestamp())

    @property
    def end_timestamp(self) -> int:
        """Unix seconds (UTC) of the end of the history window, exclusive."""
        return self.start_timestamp + self.days * 86_400

    @property
    def file_extension(self) -> str:
        """File name extension of the output shards, without the dot."""
        return self.format
