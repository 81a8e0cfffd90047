"""Prefect task for Transform."""

from __future__ import annotations

from retrain.domain.config import PipelineConfig
from retrain.domain.refs import StageOutput
from tasks.shared.stage import run_stage, stage_task
from tasks.transform import core


@stage_task(core.STAGE, core.plan)
def transform_examples(config: PipelineConfig, examples: StageOutput, schema: StageOutput) -> StageOutput:
    """Analyze and transform the examples with the user's preprocessing_fn."""
    return run_stage(core.STAGE, core.plan, core.run, config, examples, schema)
