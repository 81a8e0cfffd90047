"""Prefect task for Trainer."""

from __future__ import annotations

from prefect.runtime import flow_run

from tasks.shared.config import PipelineConfig
from tasks.shared.refs import StageOutput, TrainerOutput
from tasks.shared.stage import run_stage, stage_task
from tasks.shared.tracking import StoreEpochSink
from tasks.trainer import core
from tasks.trainer.epochs import epoch_sinks


@stage_task(core.STAGE, core.plan)
def train_model(
    config: PipelineConfig, transform: StageOutput, schema: StageOutput
) -> TrainerOutput:
    """Train run_fn (the user's, or the library's for a `model`) on the transformed examples."""
    # Each epoch of the library run_fn also lands in the run record as it finishes.
    with epoch_sinks(StoreEpochSink(flow_run.get_id())):
        return run_stage(core.STAGE, core.plan, core.run, config, transform, schema)
