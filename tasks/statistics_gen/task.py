"""Prefect task for StatisticsGen."""

from __future__ import annotations

from retrain.domain.config import PipelineConfig
from retrain.domain.refs import StageOutput, StatisticsOutput
from tasks.shared.stage import run_stage, stage_task
from tasks.statistics_gen import core


@stage_task(core.STAGE, core.plan)
def generate_statistics(config: PipelineConfig, examples: StageOutput) -> StatisticsOutput:
    """Compute TFDV statistics of every split and write the HTML report."""
    return run_stage(core.STAGE, core.plan, core.run, config, examples)
