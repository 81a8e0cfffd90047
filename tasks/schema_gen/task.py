"""Prefect task for SchemaGen."""

from __future__ import annotations

from tasks.schema_gen import core
from retrain.domain.config import PipelineConfig
from retrain.domain.refs import StageOutput
from tasks.shared.stage import run_stage, stage_task


@stage_task(core.STAGE, core.plan)
def generate_schema(config: PipelineConfig, statistics: StageOutput) -> StageOutput:
    """Infer the schema from statistics, or import the curated one."""
    return run_stage(core.STAGE, core.plan, core.run, config, statistics)
