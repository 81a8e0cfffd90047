"""The Evaluator's config: metric thresholds, force-bless and the trivial baseline.

`EvaluatorConfig` is `PipelineConfig.evaluator` (`config.py`); `tasks/evaluator/blessing.py`
applies the rules.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


LOWER_IS_BETTER = frozenset(
    {"rmse", "mae", "loss", "MeanSquaredError", "MeanAbsoluteError", "RootMeanSquaredError",
     "MeanAbsolutePercentageError", "BinaryCrossentropy", "CategoricalCrossentropy"}
)


class MetricThreshold(_Config):
    """One metric with optional absolute and change thresholds (the blessing rules)."""

    class_name: str = Field(
        description="Metric: a TFMA/Keras class (BinaryAccuracy, AUC …) for user modules; for "
        "a recommender `model` one of example_count, recall_at_5/10/50/100, rmse, mae."
    )
    lower_bound: float | None = Field(default=None, description="Blessed only if value ≥ this.")
    upper_bound: float | None = Field(default=None, description="Blessed only if value ≤ this.")
    higher_is_better: bool | None = Field(
        default=None,
        description="Direction for change thresholds; default: lower is better for errors "
        "and losses (rmse, mae, MeanSquaredError …), higher for everything else.",
    )
    max_regression: float | None = Field(
        default=None,
        ge=0,
        description="Largest allowed absolute change in the wrong direction vs the baseline; "
        "0 means 'not worse than the baseline'. Skipped on a first run (no baseline).",
    )
    relative_tolerance: float | None = Field(
        default=None,
        ge=0,
        description="Largest allowed change in the wrong direction as a fraction of the "
        "baseline's value (0.02 = 2% worse at most). Skipped on a first run.",
    )

    @property
    def better_higher(self) -> bool:
        """The direction in force (explicit, or inferred from the metric name)."""
        if self.higher_is_better is not None:
            return self.higher_is_better
        return self.class_name not in LOWER_IS_BETTER


def _squashed(name: str) -> str:
    return name.replace("_", "").lower()


def higher_is_better(metric: str, thresholds: list[MetricThreshold]) -> bool:
    """Whether a higher value of `metric` (as metrics are keyed: mean_absolute_error,
    rmse, recall_at_100 …) is better: the direction of its threshold, if one is configured,
    else lower for errors and losses."""
    for threshold in thresholds:
        if _squashed(threshold.class_name) == _squashed(metric):
            return threshold.better_higher
    squashed = _squashed(metric)
    lower = {_squashed(name) for name in LOWER_IS_BETTER}
    return squashed not in lower and not squashed.endswith(("error", "loss", "crossentropy"))


class ForceBless(_Config):
    """Bless regardless of the thresholds; the reason is recorded with the blessing."""

    reason: str = Field(
        min_length=3, description="Why this model is blessed against its thresholds (recorded)."
    )


class TrivialBaseline(_Config):
    """The model must beat a trivial predictor scored on the same eval rows (a blessing rule).

    Trivial predictors: the train split's majority class (accuracy), a constant score (AUC
    0.5), the train split's mean label (rmse, mae, MeanSquaredError …) and the items most
    popular on the train split (recall@K); a metric with none gets no rule.

    `margin` is a fraction of the trivial predictor's distance to a perfect score (1 for
    accuracy, AUC and recall, 0 for errors), the skill score of forecast verification: the
    model must remove that share of the trivial predictor's error. Unlike an absolute or a
    fraction-of-value margin it means the same on every metric and scale and is never
    impossible (majority class 0.995 + 0.01 would ask for accuracy 1.005). The default 0.05
    is a low bar for a model that learned anything (RMSE 5% below the mean predictor's) yet
    about two standard errors of accuracy on a few thousand eval rows (taxi: majority share
    0.771 → 0.783 on 4,966 rows, standard error 0.006), so a model no better than a constant
    does not pass by sampling luck.
    """

    enabled: bool = Field(
        default=True,
        description="Add a trivial_baseline rule for every thresholded metric that has a "
        "trivial predictor (computed on the train split, scored on the eval rows).",
    )
    margin: float = Field(
        default=0.05,
        ge=0,
        lt=1,
        description="How much better than the trivial predictor, as a fraction of its "
        "distance to a perfect score (0.05: remove 5% of its error; 0: only not worse).",
    )


class EvaluatorConfig(_Config):
    """Evaluator: the TFMA EvalConfig that decides the blessing, as typed fields."""

    label_key: str | None = Field(
        default=None,
        description="Label feature name as the model's signature sees it (user modules; a "
        "recommender `model` takes it from features.target).",
    )
    signature_name: str = Field(default="serving_default", description="Signature to evaluate.")
    preprocessing_function_names: list[str] = Field(
        default_factory=list,
        description="Signatures applied before the model, e.g. ['transform_features'].",
    )
    metrics: list[MetricThreshold] = Field(
        default_factory=list,
        description="Metrics and their thresholds; the example count is always computed.",
    )
    slicing_features: list[list[str]] = Field(
        default_factory=list, description="Extra slices, each a list of feature names."
    )
    example_splits: list[str] = Field(default=["eval"], description="Splits to evaluate on.")
    force_bless: ForceBless | None = Field(
        default=None, description="Bless even if thresholds fail, with a recorded reason."
    )
    trivial_baseline: TrivialBaseline = Field(
        default_factory=TrivialBaseline,
        description="Blessed only if the model beats the trivial predictor (majority class, "
        "train mean, most popular items) by a margin; on by default.",
    )
    batch_size: int = Field(
        default=1024, ge=1, description="Eval rows scored at once (recommender evaluator)."
    )
