"""ExampleValidator: statistics against the schema; anomalies fail the run by default."""

from __future__ import annotations

import json

from tasks.shared.caching import StagePlan
from retrain.domain.config import PipelineConfig
from tasks.shared.fingerprint import fingerprint
from retrain.domain.refs import StageOutput, ValidationOutput
from retrain.adapters.tfx import run_executor
from retrain.domain.stages import Stage

STAGE = Stage.EXAMPLE_VALIDATOR
EXECUTOR = "tfx.components.example_validator.executor.Executor"
ANOMALIES_FILE = "SchemaDiff.pb"


def plan(config: PipelineConfig, statistics: StageOutput, schema: StageOutput) -> StagePlan:
    """Fingerprint: statistics, schema and the anomaly policy."""
    parts = {
        "statistics": statistics.fingerprint,
        "schema": schema.fingerprint,
        "validator": config.validator,
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


def run(
    plan: StagePlan, config: PipelineConfig, statistics: StageOutput, schema: StageOutput
) -> ValidationOutput:
    """Validate every split; raise with the anomalies when the policy says so."""
    artifacts = run_executor(
        EXECUTOR,
        inputs={"statistics": statistics["statistics"], "schema": schema["schema"]},
        outputs={"anomalies": "ExampleAnomalies"},
        exec_properties={"exclude_splits": json.dumps(config.validator.exclude_splits)},
        output_dir=plan.output_dir,
    )
    from tensorflow_metadata.proto.v0 import anomalies_pb2
    from tfx.dsl.io import fileio

    ref = artifacts["anomalies"]
    found: dict[str, list[str]] = {}
    for split in ref.split_names:
        proto = anomalies_pb2.Anomalies()
        with fileio.open(f"{ref.split_uri(split)}/{ANOMALIES_FILE}", "rb") as handle:
            proto.ParseFromString(handle.read())
        lines = describe(proto)
        if lines:
            found[split] = lines
    if found and config.validator.fail_on_anomalies:
        listing = "; ".join(f"[{split}] {line}" for split, lines in found.items() for line in lines)
        raise ValueError(f"data anomalies against the schema: {listing}")
    return ValidationOutput(
        stage=STAGE, fingerprint=plan.fingerprint, artifacts=artifacts, anomalies=found
    )
