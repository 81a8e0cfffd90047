"""Prefect task for ExampleGen."""

from __future__ import annotations

from tasks.example_gen import core
from retrain.domain.config import PipelineConfig
from retrain.domain.refs import StageOutput
from tasks.shared.stage import run_stage, stage_task


@stage_task(core.STAGE, core.plan)
def generate_examples(config: PipelineConfig) -> StageOutput:
    """Read the run's raw data into train/eval tf.Example splits."""
    return run_stage(core.STAGE, core.plan, core.run, config)
