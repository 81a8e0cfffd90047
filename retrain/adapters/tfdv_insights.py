"""Per-run data insights read back from the run's TFDV artifacts.

StatisticsGen writes one `DatasetFeatureStatisticsList` per split and SchemaGen a
`schema.pbtxt`; this module turns them into small typed models (the CLI renders them: flows/cli/insights.py).
TFDV and TFX are imported inside functions: they take seconds to import.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from retrain.adapters.tfx import prepare_tf_environment

# TFX 1.16 StatisticsGen writes `FeatureStats.pb` (binary proto) in every split directory;
# artifacts from TFX before 0.29 hold a one-record TFRecord `stats_tfrecord` instead.
_BINARY_STATS = "FeatureStats.pb"
_LEGACY_STATS = "stats_tfrecord"
_SPLIT_PREFIX = "Split-"
_TOP_VALUES = 5

_MISSING = (
    "Percent of rows without the feature: num_missing / (num_non_missing + num_missing)."
)
_EMPTY = (
    "Percent of rows holding the feature with no value (CSV ExampleGen writes an empty cell "
    "this way, which TFDV does not count as missing); None when TFDV's counts cannot tell "
    "(features with several values per row)."
)


class NumericFeatureStats(BaseModel):
    """Summary of one INT or FLOAT feature in one split (TFDV `num_stats`)."""

    name: str = Field(description="Feature name (nested paths joined with '.').")
    count: int = Field(description="Rows where the feature is present.")
    missing_pct: float = Field(description=_MISSING)
    empty_pct: float | None = Field(description=_EMPTY)
    mean: float = Field(description="Mean of all values.")
    std_dev: float = Field(description="Standard deviation of all values.")
    min: float = Field(description="Smallest value.")
    median: float = Field(description="Median as TFDV estimates it (from quantiles).")
    max: float = Field(description="Largest value.")
    zeros_pct: float = Field(description="Percent of the feature's values that are zero.")


class CategoricalFeatureStats(BaseModel):
    """Summary of one string feature in one split (TFDV `string_stats`)."""

    name: str = Field(description="Feature name (nested paths joined with '.').")
    count: int = Field(description="Rows where the feature is present.")
    missing_pct: float = Field(description=_MISSING)
    empty_pct: float | None = Field(description=_EMPTY)
    unique: int = Field(description="Distinct values.")
    top_values: list[tuple[str, int]] = Field(
        description=f"Up to {_TOP_VALUES} most frequent (value, rows holding it), most "
        "frequent first."
    )
    avg_length: float = Field(description="Average length of the values, in characters.")


class SplitInsights(BaseModel):
    """What the statistics say about one split."""

    split: str = Field(description="Split name, e.g. train or eval.")
    rows: int = Field(description="Examples in the split.")
    features: int = Field(description="Features in the split, of every type.")
    numeric: list[NumericFeatureStats] = Field(description="INT and FLOAT features, by name.")
    categorical: list[CategoricalFeatureStats] = Field(description="String features, by name.")


class SchemaFeature(BaseModel):
    """One feature as the schema constrains it."""

    name: str = Field(description="Feature name.")
    type: str = Field(description="Schema type: INT, FLOAT, BYTES or STRUCT.")
    required: bool = Field(description="Every example must have it (presence min_fraction 1).")
    min_fraction: float | None = Field(
        description="Smallest fraction of examples that must have it; None if unconstrained."
    )
    domain: str | None = Field(
        description="Domain summary, e.g. 'vocabulary of 3: a, b, c' or 'int range [0, 9]'; "
        "None when the schema sets no domain."
    )
    shape: str | None = Field(
        description="Fixed shape ('shape [1]') or valency ('values 0..1'); None when free."
    )


class DataInsights(BaseModel):
    """A run's data insights: statistics per split, the schema, and the full HTML report."""

    splits: list[SplitInsights] = Field(description="Per split, train and eval first.")
    schema_: list[SchemaFeature] = Field(
        alias="schema", description="Schema features by name; empty when no schema was read."
    )
    html_report: str | None = Field(
        default=None, description="Path of the TFDV HTML report StatisticsGen wrote, if any."
    )

    model_config = ConfigDict(populate_by_name=True)

    @property
    def schema(self) -> list[SchemaFeature]:  # type: ignore[override]
        """Schema features by name (`schema` is a BaseModel attribute, hence the alias)."""
        return self.schema_


# --- reading --------------------------------------------------------------------------------


def _feature_name(feature: Any) -> str:
    return ".".join(feature.path.step) if feature.path.step else feature.name


def _missing_pct(common: Any) -> float:
    total = common.num_non_missing + common.num_missing
    return 100.0 * common.num_missing / total if total else 0.0


def _empty_pct(common: Any) -> float | None:
    if not common.num_non_missing or common.min_num_values > 0:
        return 0.0
    if common.max_num_values <= 1:  # each present row holds 0 or 1 values
        total = common.num_non_missing + common.num_missing
        return 100.0 * (common.num_non_missing - common.tot_num_values) / total
    return None


def _numeric(name: str, stats: Any) -> NumericFeatureStats:
    common = stats.common_stats
    values = common.tot_num_values
    return NumericFeatureStats(
        name=name, count=int(common.num_non_missing), missing_pct=_missing_pct(common),
        empty_pct=_empty_pct(common), mean=stats.mean, std_dev=stats.std_dev, min=stats.min,
        median=stats.median, max=stats.max,
        zeros_pct=100.0 * stats.num_zeros / values if values else 0.0,
    )


def _categorical(name: str, stats: Any) -> CategoricalFeatureStats:
    common = stats.common_stats
    top = [(item.value, int(round(item.frequency))) for item in stats.top_values[:_TOP_VALUES]]
    return CategoricalFeatureStats(
        name=name, count=int(common.num_non_missing), missing_pct=_missing_pct(common),
        empty_pct=_empty_pct(common), unique=int(stats.unique), top_values=top,
        avg_length=stats.avg_length,
    )


def split_insights(split: str, stats_list: Any) -> SplitInsights:
    """Insights of one split from its `DatasetFeatureStatisticsList` (the unsliced dataset)."""
    dataset = stats_list.datasets[0]
    numeric, categorical = [], []
    for feature in dataset.features:
        kind = feature.WhichOneof("stats")
        if kind == "num_stats":
            numeric.append(_numeric(_feature_name(feature), feature.num_stats))
        elif kind == "string_stats":
            categorical.append(_categorical(_feature_name(feature), feature.string_stats))
    return SplitInsights(
        split=split, rows=int(dataset.num_examples), features=len(dataset.features),
        numeric=sorted(numeric, key=lambda f: f.name),
        categorical=sorted(categorical, key=lambda f: f.name),
    )


def _split_order(split: str) -> tuple[int, str]:
    return ({"train": 0, "eval": 1}.get(split, 2), split)


def load_split_statistics(statistics_uri: str) -> dict[str, Any]:
    """Every split's statistics proto in an ExampleStatistics artifact directory, by split."""
    prepare_tf_environment()
    import tensorflow_data_validation as tfdv
    from tfx.dsl.io import fileio

    base = statistics_uri.rstrip("/")
    splits = [
        entry.rstrip("/")[len(_SPLIT_PREFIX):]
        for entry in fileio.listdir(base)
        if entry.startswith(_SPLIT_PREFIX)
    ]
    if not splits:
        raise FileNotFoundError(f"no {_SPLIT_PREFIX}<name> directories under {statistics_uri}")
    loaded = {}
    for split in sorted(splits, key=_split_order):
        directory = f"{base}/{_SPLIT_PREFIX}{split}"
        if fileio.exists(f"{directory}/{_BINARY_STATS}"):
            loaded[split] = tfdv.load_stats_binary(f"{directory}/{_BINARY_STATS}")
        elif fileio.exists(f"{directory}/{_LEGACY_STATS}"):
            loaded[split] = tfdv.load_statistics(f"{directory}/{_LEGACY_STATS}")
        else:
            raise FileNotFoundError(f"no {_BINARY_STATS} in {directory}")
    return loaded


def _range(domain: Any) -> str:
    low = domain.min if domain.HasField("min") else "-inf"
    high = domain.max if domain.HasField("max") else "inf"
    return f"[{low}, {high}]"


def _vocabulary(values: Any) -> str:
    shown = ", ".join(list(values)[:_TOP_VALUES])
    more = ", …" if len(values) > _TOP_VALUES else ""
    return f"vocabulary of {len(values)}: {shown}{more}"


def _domain(feature: Any, string_domains: dict[str, Any]) -> str | None:
    kind = feature.WhichOneof("domain_info")
    if kind is None:
        return None
    if kind == "domain":
        named = string_domains.get(feature.domain)
        return _vocabulary(named.value) if named is not None else f"domain {feature.domain}"
    if kind == "string_domain":
        return _vocabulary(feature.string_domain.value)
    if kind == "int_domain":
        categorical = ", categorical" if feature.int_domain.is_categorical else ""
        return f"int range {_range(feature.int_domain)}{categorical}"
    if kind == "float_domain":
        return f"float range {_range(feature.float_domain)}"
    return kind.removesuffix("_domain").replace("_", " ")


def _shape(feature: Any) -> str | None:
    kind = feature.WhichOneof("shape_type")
    if kind == "shape":
        return "shape [" + ", ".join(str(dim.size) for dim in feature.shape.dim) + "]"
    if kind == "value_count":
        count = feature.value_count
        return f"values {count.min}..{count.max}" if count.HasField("max") else (
            f"values {count.min}..")
    if kind == "value_counts":
        return "nested values " + " / ".join(
            f"{c.min}..{c.max}" for c in feature.value_counts.value_count)
    return None


def schema_features(schema: Any) -> list[SchemaFeature]:
    """The features of a `Schema` proto, summarised, by name."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    string_domains = {domain.name: domain for domain in schema.string_domain}
    features = []
    for feature in schema.feature:
        presence = feature.presence if feature.HasField("presence") else None
        min_fraction = presence.min_fraction if presence is not None else None
        features.append(SchemaFeature(
            name=feature.name,
            type=schema_pb2.FeatureType.Name(feature.type),
            required=min_fraction is not None and min_fraction >= 1.0,
            min_fraction=min_fraction,
            domain=_domain(feature, string_domains),
            shape=_shape(feature),
        ))
    return sorted(features, key=lambda f: f.name)


def read_insights(
    statistics_uri: str, schema_uri: str | None, html_report: str | None = None
) -> DataInsights:
    """Read every split's statistics from an ExampleStatistics artifact directory
    (`<uri>/Split-<name>/FeatureStats.pb`) and the schema from `<schema_uri>/schema.pbtxt`."""
    splits = [split_insights(split, proto)
              for split, proto in load_split_statistics(statistics_uri).items()]
    schema: list[SchemaFeature] = []
    if schema_uri is not None:
        import tensorflow_data_validation as tfdv

        schema = schema_features(tfdv.load_schema_text(f"{schema_uri.rstrip('/')}/schema.pbtxt"))
    return DataInsights(splits=splits, schema=schema, html_report=html_report)
