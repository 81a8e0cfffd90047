"""SchemaGen: infer a schema from statistics, or import a curated schema file."""

from __future__ import annotations

from tasks.shared.caching import StagePlan
from retrain.domain.config import PipelineConfig
from tasks.shared.fingerprint import fingerprint
from retrain.domain.refs import StageOutput
from retrain.adapters.tfx import run_executor
from retrain.domain.stages import Stage

STAGE = Stage.SCHEMA_GEN
INFER_EXECUTOR = "tfx.components.schema_gen.executor.Executor"
IMPORT_EXECUTOR = "tfx.components.schema_gen.import_schema_gen.executor.Executor"


def plan(config: PipelineConfig, statistics: StageOutput) -> StagePlan:
    """Fingerprint: statistics, schema settings and the curated schema's content."""
    schema = config.schema_
    files = [schema.schema_file] if schema.schema_file else []
    if schema.schema_file:  # an imported schema does not depend on the statistics
        parts = {"schema": schema}
    else:
        parts = {"schema": schema, "statistics": statistics.fingerprint}
    return StagePlan.for_stage(config, STAGE, fingerprint(STAGE, parts, files))


def run(plan: StagePlan, config: PipelineConfig, statistics: StageOutput) -> StageOutput:
    """Run TFX's SchemaGen or ImportSchemaGen executor."""
    schema = config.schema_
    if schema.schema_file:
        executor, inputs = IMPORT_EXECUTOR, {}
        props = {"schema_file": schema.schema_file}
    else:
        executor, inputs = INFER_EXECUTOR, {"statistics": statistics["statistics"]}
        props = {"infer_feature_shape": int(schema.infer_feature_shape), "exclude_splits": "[]"}
    artifacts = run_executor(
        executor, inputs=inputs, outputs={"schema": "Schema"},
        exec_properties=props, output_dir=plan.output_dir,
    )
    return StageOutput(stage=STAGE, fingerprint=plan.fingerprint, artifacts=artifacts)
