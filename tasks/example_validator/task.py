"""Prefect task for ExampleValidator."""

from __future__ import annotations

from prefect import task

from tasks.example_validator import core
from tasks.shared.caching import StageCache
from tasks.shared.config import PipelineConfig
from tasks.shared.progress import advance_progress
from tasks.shared.refs import StageOutput, ValidationOutput
from tasks.shared.stage import STAGE_TASK_OPTIONS, run_stage


@task(
    name=core.STAGE,
    cache_policy=StageCache(planner=core.plan),
    on_completion=[advance_progress],
    **STAGE_TASK_OPTIONS,
)
def validate_examples(config: PipelineConfig, statistics: StageOutput, schema: StageOutput) -> ValidationOutput:
    """Check statistics against the schema; anomalies fail the run unless allowed."""
    return run_stage(core.STAGE, core.plan, core.run, config, statistics, schema)
