"""Prefect task for Trainer."""

from __future__ import annotations

from tasks.shared.config import PipelineConfig
from tasks.shared.refs import StageOutput, TrainerOutput
from tasks.shared.stage import run_stage, stage_task
from tasks.trainer import core


@stage_task(core.STAGE, core.plan)
def train_model(
    config: PipelineConfig, transform: StageOutput, schema: StageOutput
) -> TrainerOutput:
    """Train run_fn (the user's, or the library's for a `model`) on the transformed examples."""
    return run_stage(core.STAGE, core.plan, core.run, config, transform, schema)
