"""Prefect task for ExampleValidator."""

from __future__ import annotations

from tasks.example_validator import core
from retrain.domain.config import PipelineConfig
from retrain.domain.refs import StageOutput, ValidationOutput
from tasks.shared.stage import run_stage, stage_task


@stage_task(core.STAGE, core.plan)
def validate_examples(config: PipelineConfig, statistics: StageOutput, schema: StageOutput) -> ValidationOutput:
    """Check statistics against the schema; anomalies fail the run unless allowed."""
    return run_stage(core.STAGE, core.plan, core.run, config, statistics, schema)
