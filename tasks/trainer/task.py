"""Prefect task for Trainer."""

from __future__ import annotations

from prefect import task

from tasks.trainer import core
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
def train_model(config: PipelineConfig, transform: StageOutput, schema: StageOutput) -> StageOutput:
    """Train the user's run_fn on the transformed examples."""
    return run_stage(core.STAGE, core.plan, core.run, config, transform, schema)
