"""Prefect task for ExampleGen."""

from __future__ import annotations

from prefect import task

from tasks.example_gen import core
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
def generate_examples(config: PipelineConfig) -> StageOutput:
    """Read the run's raw data into train/eval tf.Example splits."""
    return run_stage(core.STAGE, core.plan, core.run, config)
