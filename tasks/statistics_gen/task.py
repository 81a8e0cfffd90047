"""Prefect task for StatisticsGen."""

from __future__ import annotations

from prefect import task

from tasks.statistics_gen import core
from tasks.shared.caching import StageCache
from tasks.shared.config import PipelineConfig
from tasks.shared.progress import advance_progress
from tasks.shared.refs import StageOutput, StatisticsOutput
from tasks.shared.stage import STAGE_TASK_OPTIONS, run_stage


@task(
    name=core.STAGE,
    cache_policy=StageCache(planner=core.plan),
    on_completion=[advance_progress],
    **STAGE_TASK_OPTIONS,
)
def generate_statistics(config: PipelineConfig, examples: StageOutput) -> StatisticsOutput:
    """Compute TFDV statistics of every split and write the HTML report."""
    return run_stage(core.STAGE, core.plan, core.run, config, examples)
