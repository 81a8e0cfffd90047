"""What the Pusher publishes beside a pushed model: the facts, and the model card built from them.

`PublicationFacts` is everything known about one push (signatures, config, data, metrics
against the champion, blessing rules); the Pusher collects it. `model_card()` renders it as
markdown; `retrain.adapters.stac_mlm.stac_item()` renders it as a STAC Item (MLM extension).
Both are pure: same facts, same bytes.
"""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from retrain.domain.recommender import ModelType

# How the card's first line names each model type.
MODEL_KINDS = {
    ModelType.RETRIEVAL: "retrieval recommender (two towers)",
    ModelType.RANKING: "ranking recommender (rating regression)",
    ModelType.MULTITASK: "multitask recommender (retrieval and ranking)",
    ModelType.USER_MODULE: "TFX user-module model",
}
# Flattened config values that say "not set" (how `str()` writes None and empty containers).
EMPTY_VALUES = frozenset({"", "None", "null", "[]", "{}"})


class _Facts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TensorSpec(_Facts):
    """One named tensor of a SavedModel signature."""

    name: str = Field(description="Input or output key in the signature.")
    dtype: str = Field(description="TensorFlow dtype name: string, float32, int64 …")
    shape: list[int | None] | None = Field(
        description="Dimensions, None where unknown (the batch); None for an unknown rank."
    )


class Signature(_Facts):
    """One serving signature of a SavedModel: named inputs and outputs."""

    name: str = Field(description="Signature key, e.g. serving_default.")
    inputs: list[TensorSpec] = Field(description="Input tensors, sorted by name.")
    outputs: list[TensorSpec] = Field(description="Output tensors, sorted by name.")


class MetricVsChampion(_Facts):
    """One evaluation metric of the pushed model beside the champion's."""

    name: str = Field(description="Metric name, e.g. recall_at_10 or rmse.")
    value: float = Field(description="The pushed model's value.")
    champion: float | None = Field(
        default=None, description="The replaced champion's value; None on a first version."
    )
    higher_is_better: bool = Field(description="Direction of improvement for this metric.")

    @property
    def delta(self) -> float | None:
        """value − champion, or None without a champion."""
        return None if self.champion is None else self.value - self.champion

    @property
    def improved(self) -> bool | None:
        """Whether the change went the good way (None without a champion or a change)."""
        delta = self.delta
        if delta is None or delta == 0:
            return None
        return (delta > 0) == self.higher_is_better


class BlessingRuleLine(_Facts):
    """One blessing rule as the Evaluator judged it."""

    metric: str = Field(description="Metric the rule is about.")
    passed: bool = Field(description="Whether the model passed this rule.")
    message: str = Field(description="The Evaluator's sentence about the rule.")


class SplitSummary(_Facts):
    """One data split the model was trained or evaluated on."""

    name: str = Field(description="Split name, e.g. train or eval.")
    rows: int = Field(ge=0, description="Examples in the split.")
    missing_pct: dict[str, float] = Field(
        default_factory=dict, description="Per feature: share of examples without it, in %."
    )


class PublicationFacts(_Facts):
    """Everything the model card and the STAC Item say about one pushed model version."""

    model_name: str = Field(description="Registered model name.")
    model_type: ModelType = Field(description="Recommender type, or user_module.")
    registered_version: str = Field(description="MLflow registered-model version of this push.")
    serving_version: str = Field(description="TF Serving version directory (unix seconds).")
    serving_uri: str = Field(description="The pushed version directory (local path or gs://).")
    run_name: str = Field(description="Run's display name, e.g. 'buyer-product-retrieval #3'.")
    run_id: str = Field(description="Run record id.")
    flow_run_id: str | None = Field(default=None, description="Prefect flow run id.")
    mlflow_run_id: str | None = Field(default=None, description="MLflow run that logged it.")
    pushed_at: AwareDatetime = Field(description="When the model was pushed.")
    framework_version: str = Field(description="TensorFlow version that wrote the model.")
    signatures: list[Signature] = Field(description="SavedModel signatures, sorted by name.")
    hyperparameters: dict[str, str] = Field(
        default_factory=dict, description="The run config flattened to dotted keys."
    )
    training_data_uri: str = Field(description="Raw data the run read.")
    training_data_format: str = Field(description="Raw data format: csv, parquet, tfrecord …")
    splits: list[SplitSummary] = Field(default_factory=list, description="Data splits.")
    feature_names: list[str] = Field(default_factory=list, description="Raw input features.")
    metrics: list[MetricVsChampion] = Field(
        default_factory=list, description="Evaluation metrics beside the champion's."
    )
    champion_version: str | None = Field(
        default=None, description="Registered version this push replaced; None on a first."
    )
    blessing_rules: list[BlessingRuleLine] = Field(
        default_factory=list, description="The Evaluator's rules and their outcome."
    )
    forced_reason: str | None = Field(
        default=None, description="Why the model was force-blessed, if it was."
    )
    total_parameters: int | None = Field(
        default=None, ge=0, description="Trainable parameters, when known."
    )

    @property
    def title(self) -> str:
        """`<model_name> v<registered_version>`."""
        return f"{self.model_name} v{self.registered_version}"

    def set_hyperparameters(self, prefixes: tuple[str, ...] = ("",)) -> dict[str, str]:
        """Config keys under `prefixes` that carry a value, sorted by key."""
        return {key: value for key, value in sorted(self.hyperparameters.items())
                if key.startswith(prefixes) and value.strip() not in EMPTY_VALUES}

    def serving_signature(self) -> Signature | None:
        """`serving_default` if the model has it, else its first signature."""
        by_name = {signature.name: signature for signature in self.signatures}
        return by_name.get("serving_default") or next(iter(self.signatures), None)


# -- the model card --------------------------------------------------------------------------

def _cell(text: object) -> str:
    """A markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return lines


def _number(value: float, counts: bool, signed: bool = False) -> str:
    """A count with thousands separators, anything else with four decimals."""
    sign = "+" if signed else ""
    return f"{round(value):{sign},}" if counts else f"{value:{sign}.4f}"


def _shape(shape: list[int | None] | None) -> str:
    if shape is None:
        return "unknown rank"
    return "[" + ", ".join("None" if dim is None else str(dim) for dim in shape) + "]"


def _overview(facts: PublicationFacts) -> list[str]:
    run = f"{facts.run_name} (run `{facts.run_id}`"
    run += f", flow run `{facts.flow_run_id}`)" if facts.flow_run_id else ")"
    lines = [
        f"- **Model type:** {facts.model_type.value}",
        f"- **Run:** {run}",
        f"- **Pushed at:** {facts.pushed_at.isoformat()}",
        f"- **Serving path:** `{facts.serving_uri}` (serving version {facts.serving_version})",
        f"- **MLflow run:** `{facts.mlflow_run_id}`" if facts.mlflow_run_id
        else "- **MLflow run:** none",
        f"- **Framework:** TensorFlow {facts.framework_version}",
    ]
    if facts.total_parameters is not None:
        lines.append(f"- **Trainable parameters:** {facts.total_parameters:,}")
    lines.append(f"- **Replaces:** v{facts.champion_version}" if facts.champion_version
                 else "- **Replaces:** nothing (first version)")
    return lines


def _signatures(facts: PublicationFacts) -> list[str]:
    lines = ["## Signatures"]
    if not facts.signatures:
        return lines + ["", "No signature was read from the SavedModel."]
    for signature in facts.signatures:
        rows = [[role, spec.name, spec.dtype, _shape(spec.shape)]
                for role, specs in (("input", signature.inputs), ("output", signature.outputs))
                for spec in specs]
        lines += ["", f"### {signature.name}", ""]
        lines += _table(["role", "name", "dtype", "shape"], rows)
    return lines


def _hyperparameters(facts: PublicationFacts) -> list[str]:
    values = facts.set_hyperparameters()
    if not values:
        return ["## Hyperparameters", "", "No configuration was recorded."]
    rows = [[key, value] for key, value in values.items()]
    return ["## Hyperparameters", ""] + _table(["key", "value"], rows)


def _training_data(facts: PublicationFacts) -> list[str]:
    lines = ["## Training data", "", f"- **URI:** `{facts.training_data_uri}`",
             f"- **Format:** {facts.training_data_format}"]
    if facts.splits:
        lines += ["", "### Rows per split", ""]
        lines += _table(["split", "rows"], [[s.name, f"{s.rows:,}"] for s in facts.splits])
    features = sorted(set(facts.feature_names).union(*(s.missing_pct for s in facts.splits)))
    if features:
        lines += ["", "### Features (missing %)", ""]
        rows = [[name] + [f"{s.missing_pct[name]:.2f}" if name in s.missing_pct else "–"
                          for s in facts.splits] for name in features]
        lines += _table(["feature"] + [s.name for s in facts.splits], rows)
    return lines


def _metrics(facts: PublicationFacts) -> list[str]:
    lines = ["## Metrics against the champion", ""]
    if facts.champion_version is None:
        lines += ["First version: no champion to compare with.", ""]
    if not facts.metrics:
        return lines + ["No metrics were recorded."]
    champion = f"champion v{facts.champion_version}" if facts.champion_version else "champion"
    rows = []
    for metric in sorted(facts.metrics, key=lambda m: m.name):
        delta = metric.delta
        counts = "count" in metric.name.lower()  # example_count, TFMA's ExampleCount
        verdict = {True: " (better)", False: " (worse)", None: ""}[metric.improved]
        rows.append([metric.name, "higher" if metric.higher_is_better else "lower",
                     _number(metric.value, counts),
                     "–" if metric.champion is None else _number(metric.champion, counts),
                     "–" if delta is None else _number(delta, counts, signed=True) + verdict])
    return lines + _table(["metric", "better when", "value", champion, "delta"], rows)


def _blessing(facts: PublicationFacts) -> list[str]:
    lines = ["## Blessing rules", ""]
    if facts.blessing_rules:
        lines += [f"- {'✅ pass' if rule.passed else '❌ fail'} — **{_cell(rule.metric)}**: "
                  f"{_cell(rule.message)}" for rule in facts.blessing_rules]
    else:
        lines.append("No blessing rule was configured.")
    if facts.forced_reason:
        lines += ["", f"**Force-blessed:** {_cell(facts.forced_reason)}"]
    return lines


def model_card(facts: PublicationFacts) -> str:
    """The model card: a markdown document about one pushed model version."""
    sections = [
        [f"# {facts.title}", "",
         f"A {MODEL_KINDS[facts.model_type]} pushed by the retrain pipeline.", ""]
        + _overview(facts),
        _signatures(facts),
        _hyperparameters(facts),
        _training_data(facts),
        _metrics(facts),
        _blessing(facts),
    ]
    text = "\n\n".join("\n".join(section) for section in sections)
    return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"
