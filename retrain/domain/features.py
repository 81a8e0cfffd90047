"""FeatureConfig: which raw columns feed the query (buyer) and candidate (product) towers.

One library `preprocessing_fn` (`tasks.transform.preprocessing`) builds the tf.Transform graph
from this config, so vocabularies and statistics come from the full data. `XfColumn` is the
contract between that graph and the towers (`tasks.trainer.models`): every transformed
column's name, kind and embedding size is derived here, in one place.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Tower = Literal["query", "candidate"]
_COLUMN_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class XfColumn(_Config):
    """One transformed column as the towers see it."""

    name: str = Field(description="Transformed feature name (`<column>_xf` or `<column>__<part>_xf`).")
    kind: Literal["id", "float", "sparse_id"] = Field(
        description="`id`: int64 index into an embedding; `float`: one dense float32; "
        "`sparse_id`: variable-length int64 ids whose embeddings are mean-pooled."
    )
    tower: Tower = Field(description="The tower the column feeds.")
    size: int | None = Field(
        default=None, description="Embedding input size for ids with a fixed range."
    )
    vocabulary: str | None = Field(
        default=None,
        description="tf.Transform vocabulary whose size (+ oov_buckets) is the embedding "
        "input size, for ids from a vocabulary.",
    )
    oov_buckets: int = Field(default=0, description="OOV buckets added to the vocabulary.")
    embedding_dim: int | None = Field(default=None, description="Embedding width for ids.")


class _Feature(_Config):
    name: str = Field(description="Raw column name in the data.")

    @model_validator(mode="after")
    def _check_name(self):
        if not _COLUMN_RE.match(self.name):
            raise ValueError(f"feature name {self.name!r} is not a valid column name")
        return self

    def xf_name(self, part: str | None = None) -> str:
        """Transformed name of this feature (or of one part of it)."""
        return f"{self.name}__{part}_xf" if part else f"{self.name}_xf"


class CategoricalFeature(_Feature):
    """A categorical id (buyer_id, city …) → vocabulary index → embedding."""

    kind: Literal["categorical"] = Field(
        default="categorical",
        description="Feature kind: categorical (an id → vocabulary index → embedding).")
    embedding_dim: int = Field(gt=0, description="Embedding width.")
    top_k: int | None = Field(
        default=None, ge=1, description="Keep only the K most frequent values in the vocabulary."
    )
    frequency_threshold: int | None = Field(
        default=None, ge=1, description="Drop values seen fewer times than this."
    )
    num_oov_buckets: int = Field(
        default=1, ge=1, description="Hash buckets for values outside the vocabulary."
    )

    def outputs(self, tower: Tower) -> list[XfColumn]:
        """Vocabulary index, embedded."""
        return [
            XfColumn(name=self.xf_name(), kind="id", tower=tower, vocabulary=self.name,
                     oov_buckets=self.num_oov_buckets, embedding_dim=self.embedding_dim)
        ]


class NumericFeature(_Feature):
    """A number (price, quantity …) → z-score, or quantile buckets → embedding."""

    kind: Literal["numeric"] = Field(
        default="numeric",
        description="Feature kind: numeric (z-score, or quantile buckets → embedding).")
    transform: Literal["zscore", "bucketize"] = Field(
        default="zscore",
        description="`zscore`: (x - mean) / std over the full data; `bucketize`: quantile "
        "bucket index, embedded.",
    )
    num_buckets: int = Field(default=10, ge=2, description="Quantile buckets (bucketize).")
    embedding_dim: int = Field(default=8, gt=0, description="Embedding width (bucketize).")

    def outputs(self, tower: Tower) -> list[XfColumn]:
        """One float, or one bucket id."""
        if self.transform == "zscore":
            return [XfColumn(name=self.xf_name(), kind="float", tower=tower)]
        return [
            XfColumn(name=self.xf_name(), kind="id", tower=tower, size=self.num_buckets,
                     embedding_dim=self.embedding_dim)
        ]


class TimestampFeature(_Feature):
    """Unix seconds → cyclical hour / weekday (sin, cos) and optional recency buckets."""

    kind: Literal["timestamp"] = Field(
        default="timestamp", description="Feature kind: timestamp (unix seconds → cyclical "
        "hour and weekday, optional recency buckets).")
    cyclical: list[Literal["hour", "weekday"]] = Field(
        default_factory=lambda: ["hour", "weekday"],
        description="Periods encoded as (sin, cos) pairs: hour of day, day of week (UTC).",
    )
    day_buckets: int | None = Field(
        default=None,
        ge=2,
        description="Quantile buckets over days since the epoch (recency), embedded; "
        "None for no buckets.",
    )
    embedding_dim: int = Field(default=8, gt=0, description="Embedding width of day buckets.")

    @model_validator(mode="after")
    def _check_some_output(self) -> TimestampFeature:
        if not self.cyclical and self.day_buckets is None:
            raise ValueError(f"timestamp feature {self.name!r} needs cyclical or day_buckets")
        return self

    def outputs(self, tower: Tower) -> list[XfColumn]:
        """sin/cos floats per period, then the day bucket id."""
        columns = [
            XfColumn(name=self.xf_name(f"{period}_{fn}"), kind="float", tower=tower)
            for period in self.cyclical
            for fn in ("sin", "cos")
        ]
        if self.day_buckets is not None:
            columns.append(
                XfColumn(name=self.xf_name("day"), kind="id", tower=tower,
                         size=self.day_buckets, embedding_dim=self.embedding_dim)
            )
        return columns


class TextFeature(_Feature):
    """Free text (product name …) → lower-cased tokens → hashed ids → mean of embeddings."""

    kind: Literal["text"] = Field(
        default="text",
        description="Feature kind: text (free text → hashed tokens → mean of embeddings).")
    hash_buckets: int = Field(default=10_000, ge=2, description="Token hash buckets.")
    embedding_dim: int = Field(gt=0, description="Embedding width.")
    delimiter: str = Field(default=" ", min_length=1, description="Token separator.")

    def outputs(self, tower: Tower) -> list[XfColumn]:
        """Variable-length hashed token ids."""
        return [
            XfColumn(name=self.xf_name(), kind="sparse_id", tower=tower, size=self.hash_buckets,
                     embedding_dim=self.embedding_dim)
        ]


Feature = Annotated[
    CategoricalFeature | NumericFeature | TimestampFeature | TextFeature,
    Field(discriminator="kind"),
]


class CrossFeature(_Config):
    """Two categorical features of one tower crossed → hashed bucket → embedding."""

    columns: tuple[str, str] = Field(description="The two categorical feature names.")
    hash_buckets: int = Field(default=1_000, ge=2, description="Hash buckets of the cross.")
    embedding_dim: int = Field(gt=0, description="Embedding width.")

    @property
    def name(self) -> str:
        """Transformed-name stem, e.g. `city_x_category`."""
        return "_x_".join(self.columns)

    def outputs(self, tower: Tower) -> list[XfColumn]:
        """One hashed id."""
        return [
            XfColumn(name=f"{self.name}_xf", kind="id", tower=tower, size=self.hash_buckets,
                     embedding_dim=self.embedding_dim)
        ]


class TargetConfig(_Config):
    """The ranking target (e.g. rating) and how it is transformed for training."""

    column: str = Field(description="Raw target column, e.g. `rating`.")
    transform: Literal["none", "log1p"] = Field(
        default="none",
        description="`log1p` for counts (the model predicts log1p and serving inverts it); "
        "metrics are always reported in raw units.",
    )
    default_value: float = Field(default=0.0, description="Value used where the target is missing.")

    @property
    def xf_name(self) -> str:
        """Transformed target name."""
        return f"{self.column}_xf"


class FeedbackKind(str, Enum):
    """How a feedback column reads."""

    RATING = "rating"
    COUNT = "count"


class FeedbackFeature(_Config):
    """A column that says how much a row's buyer liked its candidate: a training signal
    beside the choice itself, read by the posterior fit (`model.fit: posterior`), never a
    tower input."""

    column: str = Field(description="Raw column, e.g. `rating` or `quantity`.")
    kind: FeedbackKind = Field(
        description="`rating`: a score on a capped scale [low, high]; a value at an end reads "
        "\"this or beyond\". `count`: how many, at least `low` (e.g. a quantity of 1 or more).")
    low: float = Field(default=0.0, description="The scale's lower end (rating) or the "
                       "smallest count (count).")
    high: float | None = Field(default=None, description="The scale's upper end (rating).")

    @model_validator(mode="after")
    def _check_scale(self) -> FeedbackFeature:
        if not _COLUMN_RE.match(self.column):
            raise ValueError(f"features.feedback: {self.column!r} is not a valid column name")
        if self.kind == FeedbackKind.RATING and (self.high is None or self.high <= self.low):
            raise ValueError(f"features.feedback {self.column!r}: a rating needs high > low "
                             f"(got low {self.low}, high {self.high})")
        if self.kind == FeedbackKind.COUNT and self.high is not None:
            raise ValueError(f"features.feedback {self.column!r}: a count has no high end")
        return self

    @property
    def xf_name(self) -> str:
        """Transformed name: the raw value as float32, NaN where missing."""
        return f"{self.column}__feedback_xf"


class FeatureConfig(_Config):
    """Query (buyer) and candidate (product) features, crosses and the ranking target."""

    query: list[Feature] = Field(min_length=1, description="Features of the query tower.")
    candidate: list[Feature] = Field(
        min_length=1, description="Features of the candidate tower."
    )
    crosses: list[CrossFeature] = Field(
        default_factory=list,
        description="Crosses of two categorical features of the same tower.",
    )
    candidate_id: str | None = Field(
        default=None,
        description="Categorical candidate feature that identifies a candidate (the ids "
        "retrieval returns); default: the first categorical candidate feature.",
    )
    target: TargetConfig | None = Field(
        default=None, description="Ranking target; required for ranking and multitask models."
    )
    feedback: list[FeedbackFeature] = Field(
        default_factory=list, max_length=8,
        description="Ratings and counts the posterior fit reads beside each row's choice "
        "(`model.fit: posterior`); other fits ignore them.",
    )

    @model_validator(mode="after")
    def _check_references(self) -> FeatureConfig:
        seen: dict[str, str] = {}
        for tower in ("query", "candidate"):
            for index, feature in enumerate(getattr(self, tower)):
                if feature.name in seen:
                    raise ValueError(
                        f"features.{tower}[{index}]: {feature.name!r} is already a "
                        f"{seen[feature.name]} feature; a column feeds one tower"
                    )
                seen[feature.name] = tower
        for index, cross in enumerate(self.crosses):
            where = f"features.crosses[{index}]"
            if cross.columns[0] == cross.columns[1]:
                raise ValueError(f"{where}: crosses two different features, got {cross.columns}")
            towers = set()
            for column in cross.columns:
                feature = self.feature(column)
                if feature is None:
                    raise ValueError(f"{where}: unknown feature {column!r} (declared: {sorted(seen)})")
                if feature.kind != "categorical":
                    raise ValueError(
                        f"{where}: {column!r} is {feature.kind}; crosses combine two "
                        "categorical features"
                    )
                towers.add(seen[column])
            if len(towers) > 1:
                raise ValueError(f"{where}: {cross.columns} are in different towers")
        candidate_id = self.candidate_id_feature  # raises for an unknown or wrong feature
        if self.target is not None and self.target.column in seen:
            raise ValueError(
                f"features.target: {self.target.column!r} is also an input feature (label leak)"
            )
        del candidate_id
        names = [column.name for column in self.xf_columns()]
        if self.target is not None:
            names.append(self.target.xf_name)
        names += [feedback.xf_name for feedback in self.feedback]
        clashes = sorted({name for name in names if names.count(name) > 1})
        if clashes:
            raise ValueError(f"features: transformed names collide: {clashes}; rename a feature")
        return self

    def feature(self, name: str):
        """The declared feature of this name, or None."""
        for feature in (*self.query, *self.candidate):
            if feature.name == name:
                return feature
        return None

    def tower_of(self, name: str) -> Tower:
        """Which tower a declared feature feeds."""
        return "query" if any(f.name == name for f in self.query) else "candidate"

    @property
    def candidate_id_feature(self) -> CategoricalFeature:
        """The categorical feature whose vocabulary is the candidate corpus."""
        if self.candidate_id is None:
            for feature in self.candidate:
                if feature.kind == "categorical":
                    return feature
            raise ValueError(
                "features.candidate: needs a categorical feature to identify candidates"
            )
        feature = self.feature(self.candidate_id)
        if feature is None or self.tower_of(self.candidate_id) != "candidate":
            raise ValueError(
                f"features.candidate_id: unknown candidate feature {self.candidate_id!r}"
            )
        if feature.kind != "categorical":
            raise ValueError(
                f"features.candidate_id: {self.candidate_id!r} is {feature.kind}, not categorical"
            )
        return feature

    def xf_columns(self, tower: Tower | None = None) -> list[XfColumn]:
        """Every transformed input column (of one tower), in config order."""
        columns: list[XfColumn] = []
        for side in ("query", "candidate"):
            for feature in getattr(self, side):
                columns.extend(feature.outputs(side))
            for cross in self.crosses:
                if self.tower_of(cross.columns[0]) == side:
                    columns.extend(cross.outputs(side))
        return [c for c in columns if tower is None or c.tower == tower]

    def raw_columns(self, tower: Tower | None = None) -> list[str]:
        """Raw columns a request for one tower (or both) must carry."""
        names = [f.name for f in self.query] if tower in (None, "query") else []
        if tower in (None, "candidate"):
            names += [f.name for f in self.candidate]
        return names
