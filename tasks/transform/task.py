"""Prefect task for Transform."""

from __future__ import annotations

from prefect import task

from tasks.transform import core
from tasks.shared.caching import StageCache
from tasks.shared.config import PipelineConfig
from tasks.shared.progress import advance_progress
from tasks.shared.refs import StageOutput
from tasks.shared.stage import STAGE_TASK_OPTIONS, run_stage


@task(
    name=core.STAGE,
    cache_policy=StageCache(planner=core.plan),
    on_completion=[advance_progress],
    **STAGE_TASK_OPTIONS,
)
def transform_examples(config: PipelineConfig, examples: StageOutput, schema: StageOutput) -> StageOutput:
    """Analyze and transform the examples with the user's preprocessing_fn."""
    return run_stage(core.STAGE, core.plan, core.run, config, examples, schema)
