"""Prefect tasks for the Trainer: in this process, or as the `gpu-trainer` flow's attempt."""

from __future__ import annotations

import fsspec
from prefect import get_run_logger, task
from prefect.runtime import flow_run

from tasks.shared import tracking
from tasks.shared.caching import StagePlan
from retrain.domain.config import PipelineConfig
from retrain.domain.refs import StageOutput, TrainerOutput
from tasks.shared.stage import StageError, describe_error, run_stage, stage_task
from retrain.adapters.tfx import prepare_tf_environment
from retrain.domain.stages import Stage
from tasks.shared.progress import EpochTableSink
from tasks.shared.tracking import StoreEpochSink
from tasks.trainer import core, remote
from tasks.trainer.epochs import epoch_sinks
from tasks.trainer.request import OUTPUT_FILE, TrainerRequest


def _train_here(plan: StagePlan, config: PipelineConfig, transform: StageOutput,
                schema: StageOutput) -> TrainerOutput:
    return core.run(plan, config, transform, schema)


def _train_through_deployment(plan: StagePlan, config: PipelineConfig, transform: StageOutput,
                              schema: StageOutput) -> TrainerOutput:
    return remote.train_remotely(plan, config, transform, schema, str(flow_run.get_id()))


@stage_task(core.STAGE, core.plan)
def train_model(
    config: PipelineConfig, transform: StageOutput, schema: StageOutput
) -> TrainerOutput:
    """Train run_fn (the user's, or the library's for a `model`) on the transformed examples:
    in this process, or as flow runs of `gpu.deployment` (GPU options, resume)."""
    train = _train_through_deployment if config.gpu.deployment else _train_here
    # Each epoch of the library run_fn also lands in the run record and the run view's
    # epochs table as it finishes.
    run_id = flow_run.get_id()
    with epoch_sinks(StoreEpochSink(run_id), EpochTableSink(run_id, config.model_name)):
        output = run_stage(core.STAGE, core.plan, train, config, transform, schema)
    tracking.record_trainer_devices(flow_run.get_id(), output)
    return output


def _log_devices(output: TrainerOutput) -> None:
    logger = get_run_logger()
    logger.info("GPUs visible to TensorFlow: %s", output.gpus_visible or "none")
    if output.strategy:
        logger.info("Strategy %s with %s replica(s); %s epoch(s) trained, %s resumed from a "
                    "checkpoint; %s optimizer steps", output.strategy, output.replicas,
                    output.epochs_run, output.resumed_from_epoch or 0, output.optimizer_steps)


@task(name=Stage.TRAINER.value, retries=0)
def train_attempt(request: TrainerRequest) -> TrainerOutput:
    """One attempt of a run's Trainer (the gpu-trainer flow's body): train with the
    attempt's GPU option into the run's Trainer directory, resuming from the last epoch
    checkpoint, then write the output reference beside the model for the training flow."""
    prepare_tf_environment()
    plan = request.plan
    here = core.plan(request.config, request.transform, request.schema_)
    if here.fingerprint != plan.fingerprint:
        # Same inputs, other code: the model would be cached under a key it does not match.
        raise StageError(core.STAGE, (
            f"this trainer's code differs from the training flow's (Trainer fingerprint "
            f"{here.fingerprint[:12]} here, {plan.fingerprint[:12]} there); run the same "
            "retrain version in the trainer image and the pipeline"))
    config = request.attempt_config
    get_run_logger().info("Trainer attempt %d for %s (%s) writing to %s", request.attempt,
                          config.model_name, request.gpu.label() if config.gpu.enabled
                          else "CPU", plan.output_dir)
    checkpoints = core.checkpoint_dir(plan) if config.recommender else None
    with epoch_sinks(StoreEpochSink(request.run_flow_run_id),
                     EpochTableSink(request.run_flow_run_id, config.model_name)):
        try:
            output = core.run(plan, config, request.transform, request.schema_, checkpoints)
        except Exception as exc:  # one readable line: the training flow shows it as the stage's
            raise StageError(core.STAGE, describe_error(exc)) from exc
    _log_devices(output)
    fs, path = fsspec.core.url_to_fs(f"{plan.output_dir}/{OUTPUT_FILE}")
    with fs.open(path, "w") as handle:
        handle.write(output.model_dump_json(indent=1))
    return output
