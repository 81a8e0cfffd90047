"""ExampleValidator: statistics against the schema (TFX's executor), then the data gates.

Schema anomalies fail the run by default (`validator.fail_on_anomalies`). The gates
(`retrain/domain/data_gates.py`) measure drift against the model's previous finished run,
skew of eval against train, and empty or constant features; a gate whose action is `fail`
stops the run here, naming every feature and its distance, so nothing is trained or pushed.
"""

from __future__ import annotations

import json

from tasks.shared.caching import StagePlan
from retrain.domain.config import PipelineConfig
from retrain.domain.data_gates import (
    Comparison,
    DataFinding,
    FeatureDistance,
    GateAction,
    failing,
    failure_message,
    judge_degenerate,
    judge_distances,
)
from tasks.shared.fingerprint import fingerprint
from retrain.domain.refs import StageOutput, StatisticsBaseline, ValidationOutput
from retrain.adapters.tfx import run_executor
from retrain.domain.stages import Stage

STAGE = Stage.EXAMPLE_VALIDATOR
EXECUTOR = "tfx.components.example_validator.executor.Executor"
ANOMALIES_FILE = "SchemaDiff.pb"
GATES_FILE = "data_gates.json"
TRAIN, EVAL = "train", "eval"


class DataGateError(ValueError):
    """The data gates stopped the run; `findings` are every feature that crossed one."""

    def __init__(self, message: str, findings: list[DataFinding]):
        super().__init__(message)
        self.findings = findings


def comparable_baseline(
    baseline: StatisticsBaseline | None, statistics: StageOutput
) -> StatisticsBaseline | None:
    """The drift baseline, unless it is this run's own statistics (an identical re-run whose
    StatisticsGen hit the cache): data is never compared with itself."""
    if baseline is None:
        return None
    own = statistics["statistics"].uri.rstrip("/")
    return None if baseline.statistics_uri.rstrip("/") == own else baseline


def plan(config: PipelineConfig, statistics: StageOutput, schema: StageOutput,
         baseline: StatisticsBaseline | None = None) -> StagePlan:
    """Fingerprint: statistics, schema, the validator config and the drift baseline's data."""
    baseline = comparable_baseline(baseline, statistics)
    parts = {
        "statistics": statistics.fingerprint,
        "schema": schema.fingerprint,
        "validator": config.validator,
        "baseline": baseline.statistics_uri if baseline else None,
    }
    return StagePlan.for_stage(config, STAGE, fingerprint(STAGE, parts))


def describe(anomalies) -> list[str]:
    """'feature: description' lines from a tensorflow_metadata Anomalies proto."""
    lines = []
    for feature, info in sorted(anomalies.anomaly_info.items()):
        text = info.description or info.short_description
        lines.append(f"{feature}: {text}")
    if anomalies.HasField("dataset_anomaly_info"):
        info = anomalies.dataset_anomaly_info
        lines.append(f"(dataset): {info.description or info.short_description}")
    return lines


def _schema_anomalies(ref) -> dict[str, list[str]]:
    from tensorflow_metadata.proto.v0 import anomalies_pb2
    from tfx.dsl.io import fileio

    found: dict[str, list[str]] = {}
    for split in ref.split_names:
        proto = anomalies_pb2.Anomalies()
        with fileio.open(f"{ref.split_uri(split)}/{ANOMALIES_FILE}", "rb") as handle:
            proto.ParseFromString(handle.read())
        lines = describe(proto)
        if lines:
            found[split] = lines
    return found


class GateResult:
    """What the gates measured and found, and what they could not check."""

    def __init__(self) -> None:
        self.findings: list[DataFinding] = []
        self.distances: dict[Comparison, list[FeatureDistance]] = {}
        self.notes: list[str] = []


def apply_gates(config: PipelineConfig, statistics: StageOutput,
                baseline: StatisticsBaseline | None) -> GateResult:
    """Measure and judge drift, skew and degenerate features (reads TFDV statistics)."""
    from retrain.adapters.tfdv_drift import degenerate_features, feature_distances
    from retrain.adapters.tfdv_insights import load_split_statistics

    gates = config.validator.gates
    result = GateResult()
    current = {split: stats for split, stats
               in load_split_statistics(statistics["statistics"].uri).items()
               if split not in config.validator.exclude_splits}
    result.findings += judge_degenerate(*degenerate_features(current), gates)
    if gates.skew.action is not GateAction.OFF:
        if TRAIN in current and EVAL in current:
            skew = feature_distances(current[TRAIN], current[EVAL], Comparison.SKEW)
            result.distances[Comparison.SKEW] = skew
            result.findings += judge_distances(Comparison.SKEW, gates.skew, skew,
                                               "the train split")
        else:
            result.notes.append("skew: not checked (needs both a train and an eval split)")
    if gates.drift.action is GateAction.OFF:
        return result
    if baseline is None:
        result.notes.append(f"drift: not checked, no earlier finished run of "
                            f"{config.model_name} to compare with (first run)")
        return result
    try:
        previous = load_split_statistics(baseline.statistics_uri)
    except (FileNotFoundError, OSError) as exc:
        result.notes.append(f"drift: not checked, the statistics of {baseline.label} cannot be "
                            f"read ({exc})")
        return result
    if TRAIN not in current or TRAIN not in previous:
        result.notes.append("drift: not checked (needs a train split in both runs)")
        return result
    drift = feature_distances(current[TRAIN], previous[TRAIN], Comparison.DRIFT)
    result.distances[Comparison.DRIFT] = drift
    result.findings += judge_distances(Comparison.DRIFT, gates.drift, drift, baseline.label)
    return result


def run(
    plan: StagePlan, config: PipelineConfig, statistics: StageOutput, schema: StageOutput,
    baseline: StatisticsBaseline | None = None,
) -> ValidationOutput:
    """Validate every split against the schema, then apply the gates; raise when either
    says the run must stop."""
    artifacts = run_executor(
        EXECUTOR,
        inputs={"statistics": statistics["statistics"], "schema": schema["schema"]},
        outputs={"anomalies": "ExampleAnomalies"},
        exec_properties={"exclude_splits": json.dumps(config.validator.exclude_splits)},
        output_dir=plan.output_dir,
    )
    found = _schema_anomalies(artifacts["anomalies"])
    baseline = comparable_baseline(baseline, statistics)
    gates = apply_gates(config, statistics, baseline)
    from tfx.dsl.io import fileio

    with fileio.open(f"{plan.output_dir.rstrip('/')}/{GATES_FILE}", "w") as handle:
        handle.write(json.dumps({
            "baseline": baseline.model_dump() if baseline else None,
            "findings": [finding.model_dump(mode="json") for finding in gates.findings],
            "distances": {comparison.value: [d.model_dump(mode="json") for d in distances]
                          for comparison, distances in gates.distances.items()},
            "notes": gates.notes,
        }, indent=2))
    problems = []
    if found and config.validator.fail_on_anomalies:
        listing = "; ".join(f"[{split}] {line}" for split, lines in found.items() for line in lines)
        problems.append(f"data anomalies against the schema: {listing}")
    if failing(gates.findings):
        problems.append(failure_message(gates.findings))
    if problems:
        raise DataGateError("; ".join(problems), gates.findings)
    return ValidationOutput(
        stage=STAGE, fingerprint=plan.fingerprint, artifacts=artifacts, anomalies=found,
        findings=gates.findings, distances=gates.distances,
        drift_baseline=baseline.label if baseline else None, notes=gates.notes,
    )
