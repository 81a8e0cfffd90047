"""The end-of-run summary: stage timings, cache hits, data, the training curve, metrics
against the champion, blessing, push."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from retrain.domain.data_gates import DataFinding
from retrain.domain.epochs import epoch_row, markdown_table
from retrain.domain.evaluation import MetricThreshold, higher_is_better
from retrain.domain.recommender import FitMethod
from retrain.domain.refs import (
    Blessing,
    EpochMetrics,
    EvaluationOutput,
    FloorMetric,
    PushOutput,
    StatisticsOutput,
    TrainerOutput,
    ValidationOutput,
)
from retrain.domain.stages import Stage


class StageTiming(BaseModel):
    """One stage's final state and wall time, as Prefect recorded them."""

    stage: Stage = Field(description="TFX stage name.")
    state: str = Field(description="Final state name: Completed, Cached, Failed …")
    seconds: float = Field(description="Wall time of the task run.")


class MetricComparison(BaseModel):
    """One Evaluator metric beside the champion's value on the same eval data."""

    metric: str = Field(description="Metric name, as the Evaluator keys it.")
    value: float = Field(description="The candidate's value.")
    champion: float | None = Field(default=None, description="The champion's value (none: "
                                   "no champion, or it was not measured).")
    higher_is_better: bool = Field(description="Direction: the threshold's, else inferred.")

    @property
    def delta(self) -> float | None:
        """Candidate minus champion."""
        return None if self.champion is None else self.value - self.champion

    @property
    def verdict(self) -> str:
        """'better', 'worse' or 'same' than the champion ('' without one)."""
        if self.delta is None:
            return ""
        if abs(self.delta) < 1e-12:
            return "same"
        return "better" if (self.delta > 0) == self.higher_is_better else "worse"


class RunSummary(BaseModel):
    """What a finished training run produced, small enough to print and to store."""

    model_name: str = Field(description="Registered model name.")
    outcome: Literal["pushed", "not_blessed"] = Field(description="How the run ended.")
    stages: list[StageTiming] = Field(description="Stage timings in pipeline order.")
    rows: dict[str, int] = Field(description="Rows per split.")
    anomalies: dict[str, list[str]] = Field(description="Anomalies per split (if allowed).")
    data_findings: list[DataFinding] = Field(
        default_factory=list, description="Features a data gate warned about (drift, skew, "
        "empty, constant).")
    data_notes: list[str] = Field(default_factory=list, description="Gates not checked, why.")
    drift_baseline: str | None = Field(default=None, description="Run drift was measured against.")
    statistics_report: str = Field(description="Path of the TFDV HTML report.")
    metrics: dict[str, float] = Field(description="Evaluator metrics, overall slice.")
    comparison: list[MetricComparison] = Field(
        default_factory=list, description="Each metric beside the champion's.")
    floors: list[FloorMetric] = Field(
        default_factory=list, description="What a model that learned nothing scores on the "
        "same eval rows (most-popular items, the train mean …).")
    epochs: list[EpochMetrics] = Field(
        default_factory=list, description="The Trainer's epochs: the training curve.")
    best_epoch: int | None = Field(default=None, description="The epoch exported.")
    best_epoch_metric: str | None = Field(
        default=None, description="The validation metric that picked it (None: the last).")
    fit: FitMethod | None = Field(
        default=None, description="How the Trainer found the weights (None: a user module).")
    blessed: bool = Field(description="The Evaluator's verdict.")
    baseline_model_uri: str | None = Field(description="What the candidate was compared with.")
    failed_checks: list[str] = Field(description="Thresholds that failed.")
    blessing: Blessing | None = Field(default=None, description="Rule-by-rule blessing record.")
    push: PushOutput = Field(description="The Pusher's result.")

    @property
    def cached_stages(self) -> list[Stage]:
        """Stages whose outputs came from the cache."""
        return [timing.stage for timing in self.stages if timing.state == "Cached"]


def build_summary(
    model_name: str,
    timings: list[StageTiming],
    statistics: StatisticsOutput,
    validation: ValidationOutput,
    evaluation: EvaluationOutput,
    push: PushOutput,
    trainer: TrainerOutput | None = None,
    thresholds: list[MetricThreshold] | None = None,
) -> RunSummary:
    """Assemble the summary from the stage outputs (no I/O)."""
    champion = (evaluation.blessing.baseline_metrics if evaluation.blessing else None) or {}
    comparison = [
        MetricComparison(metric=name, value=value, champion=champion.get(name),
                         higher_is_better=higher_is_better(name, thresholds or []))
        for name, value in sorted(evaluation.metrics.items())]
    return RunSummary(
        model_name=model_name,
        outcome="pushed" if push.pushed else "not_blessed",
        stages=timings,
        rows={split: stats.rows for split, stats in statistics.splits.items()},
        anomalies=validation.anomalies,
        data_findings=validation.findings,
        data_notes=validation.notes,
        drift_baseline=validation.drift_baseline,
        statistics_report=statistics.html_report,
        metrics=evaluation.metrics,
        comparison=comparison,
        floors=evaluation.floors,
        epochs=trainer.epochs if trainer else [],
        best_epoch=trainer.best_epoch if trainer else None,
        best_epoch_metric=trainer.best_epoch_metric if trainer else None,
        fit=trainer.fit if trainer else None,
        blessed=evaluation.blessed,
        baseline_model_uri=evaluation.baseline_model_uri,
        failed_checks=evaluation.failed_checks,
        blessing=evaluation.blessing,
        push=push,
    )


def render_markdown(summary: RunSummary) -> str:
    """The Prefect markdown artifact shown at the end of a run."""
    lines = [f"# Training run: `{summary.model_name}` — {summary.outcome.replace('_', ' ')}", ""]
    lines += ["## Stages", "", "| stage | state | seconds |", "|---|---|---|"]
    lines += [f"| {t.stage} | {t.state} | {t.seconds:.1f} |" for t in summary.stages]
    lines += ["", f"Cache hits: {', '.join(summary.cached_stages) or 'none'}", ""]
    lines += ["## Data", "", "| split | rows |", "|---|---|"]
    lines += [f"| {split} | {rows} |" for split, rows in summary.rows.items()]
    anomaly_lines = [f"- [{s}] {a}" for s, items in summary.anomalies.items() for a in items[:5]]
    lines += ["", "Top anomalies:", *(anomaly_lines or ["- none"]), ""]
    lines += [f"Data gates (drift against {summary.drift_baseline or 'no earlier run'}):",
              *([f"- {f.message} ({f.action.value})" for f in summary.data_findings]
                or ["- nothing flagged"]), *[f"- {note}" for note in summary.data_notes], ""]
    lines += [f"Full statistics report: `{summary.statistics_report}`", ""]
    if summary.epochs:
        last = summary.epochs[-1]
        kept = (f" Exported: epoch {summary.best_epoch}, the best by "
                f"{summary.best_epoch_metric}." if summary.best_epoch_metric else "")
        progress = (f"{len(summary.epochs)} of {last.total_epochs} blocks of Langevin steps "
                    "(posterior fit: the model served is the mean of the samples kept)."
                    if summary.fit == FitMethod.POSTERIOR
                    else f"{len(summary.epochs)} of {last.total_epochs} epochs.{kept}")
        lines += ["## Training curve", "", progress, ""]
        lines += markdown_table([epoch_row(record) for record in summary.epochs]) + [""]
    champion = summary.blessing.baseline_version if summary.blessing else None
    lines += ["## Evaluation", "",
              f"| metric | value | champion{f' (v{champion})' if champion else ''} | delta | |",
              "|---|---|---|---|---|"]
    lines += [_comparison_line(c) for c in summary.comparison]
    for floor in _floor_lines(summary):
        lines += ["", f"Floor on the same eval rows: {floor}."]
    lines += ["", f"Blessed: **{summary.blessed}**; baseline: "
              f"`{summary.baseline_model_uri or 'none (first run)'}`"]
    lines += [f"- failed: {check}" for check in summary.failed_checks]
    if summary.blessing is not None:
        lines += ["", "| rule | metric | passed | detail |", "|---|---|---|---|"]
        lines += [f"| {r.rule} | {r.metric} | {'yes' if r.passed else 'no'} | {r.message} |"
                  for r in summary.blessing.rules]
        if summary.blessing.baseline_version:
            lines += ["", f"Baseline: champion version {summary.blessing.baseline_version}."]
    push = summary.push
    lines += ["", "## Push", ""]
    if push.pushed:
        lines += [
            f"Pushed to `{push.serving_uri}` (version {push.version}).",
            f"MLflow run `{push.mlflow_run_id}`, registered version {push.registered_version}.",
        ]
        if push.model_card_uri:
            lines += [f"Model card `{push.model_card_uri}`, STAC item `{push.stac_item_uri}`."]
        if push.publication_error:
            lines += [f"Model card and STAC item not written: {push.publication_error}"]
    else:
        lines += [f"Not pushed: {push.reason}"]
    return "\n".join(lines) + "\n"


def _comparison_line(c: MetricComparison) -> str:
    champion = "—" if c.champion is None else f"{c.champion:.4f}"
    delta = "" if c.delta is None else f"{c.delta:+.4f}"
    arrow = "higher is better" if c.higher_is_better else "lower is better"
    if c.metric == "example_count":  # a count of eval rows, not a score
        arrow = ""
    return f"| {c.metric} | {c.value:.4f} | {champion} | {delta} | {c.verdict or arrow} |"


def _floor_lines(summary: RunSummary) -> list[str]:
    """Per trivial predictor: each metric's model value against the predictor's, e.g.
    'recall_at_10 0.2500 vs 0.1200, … (most-popular-items predictor)'."""
    by_predictor: dict[str, list[FloorMetric]] = {}
    for floor in sorted(summary.floors, key=lambda f: _natural(f.metric)):
        if floor.metric in summary.metrics:
            by_predictor.setdefault(floor.predictor, []).append(floor)
    return [", ".join(f"{f.metric} {summary.metrics[f.metric]:.4f} vs {f.value:.4f}"
                      for f in floors) + f" ({predictor})"
            for predictor, floors in by_predictor.items()]


def _natural(name: str) -> tuple[str, int]:
    """recall_at_5 before recall_at_10: the name without its number, then the number."""
    stem, _, number = name.rpartition("_")
    return (stem, int(number)) if number.isdigit() else (name, 0)


def render_text(summary: RunSummary) -> str:
    """A terminal summary for the CLI and the demo."""
    out = [f"model {summary.model_name}: {summary.outcome}"]
    for t in summary.stages:
        out.append(f"  {t.stage:<17} {t.state:<10} {t.seconds:7.1f}s")
    out.append("  rows: " + ", ".join(f"{s}={n}" for s, n in summary.rows.items()))
    out.extend(f"  data {f.action.value}: {f.message}" for f in summary.data_findings)
    out.extend(f"  data: {note}" for note in summary.data_notes)
    out.append("  metrics: " + ", ".join(f"{k}={v:.4f}" for k, v in sorted(summary.metrics.items())))
    out.extend(f"  floor: {line}" for line in _floor_lines(summary))
    against = [c for c in summary.comparison if c.champion is not None]
    if against and summary.blessing is not None:
        out.append(f"  against champion v{summary.blessing.baseline_version}: " + ", ".join(
            f"{c.metric} {c.delta:+.4f} ({c.verdict})" for c in against))
    out.append(f"  blessed: {summary.blessed}")
    if summary.blessing is not None:
        out.extend(f"    {'ok  ' if r.passed else 'FAIL'} {r.message}" for r in summary.blessing.rules)
    if summary.push.pushed:
        out.append(f"  pushed: {summary.push.serving_uri}")
        out.append(f"  mlflow: run {summary.push.mlflow_run_id}, "
                   f"version {summary.push.registered_version}")
        if summary.push.model_card_uri:
            out.append(f"  model card: {summary.push.model_card_uri}")
    else:
        out.append(f"  not pushed: {summary.push.reason}")
    out.append(f"  statistics report: {summary.statistics_report}")
    return "\n".join(out)
