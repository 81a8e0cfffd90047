"""Trainer: the user's run_fn(fn_args) through TFX's GenericExecutor."""

from __future__ import annotations

import json

from tasks.shared.caching import StagePlan
from tasks.shared.config import PipelineConfig
from tasks.shared.fingerprint import fingerprint, module_sources
from tasks.shared.refs import StageOutput
from tasks.shared.tfx_runtime import package_user_module, proto_json, run_executor

STAGE = "Trainer"
EXECUTOR = "tfx.components.trainer.executor.GenericExecutor"


def plan(config: PipelineConfig, transform: StageOutput, schema: StageOutput) -> StagePlan:
    """Fingerprint: transform outputs, schema, trainer config and run_fn's module sources."""
    parts = {
        "transform": transform.fingerprint,
        "schema": schema.fingerprint,
        "trainer": config.trainer.model_dump(exclude={"module_file"}),
    }
    fp = fingerprint(STAGE, parts, module_sources(config.trainer_module_file))
    return StagePlan.for_stage(config, STAGE, fp)


def serving_model_exists(model_uri: str) -> bool:
    """TFX's layout: <model>/Format-Serving/saved_model.pb."""
    from tfx.dsl.io import fileio
    from tfx.utils import path_utils

    return fileio.exists(f"{path_utils.serving_model_path(model_uri)}/saved_model.pb")


def seed_tensorflow(seed: int | None) -> None:
    """Make run_fn reproducible without touching the user's module."""
    if seed is None:
        return
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def run(
    plan: StagePlan, config: PipelineConfig, transform: StageOutput, schema: StageOutput
) -> StageOutput:
    """Train; fail if run_fn returned without writing a serving model."""
    from tfx.proto import trainer_pb2

    seed_tensorflow(config.trainer.seed)

    artifacts = run_executor(
        EXECUTOR,
        inputs={
            "examples": transform["transformed_examples"],
            "transform_graph": transform["transform_graph"],
            "schema": schema["schema"],
        },
        outputs={"model": "Model", "model_run": "ModelRun"},
        exec_properties={
            "train_args": proto_json(trainer_pb2.TrainArgs(num_steps=config.trainer.train_steps)),
            "eval_args": proto_json(trainer_pb2.EvalArgs(num_steps=config.trainer.eval_steps)),
            "module_file": None,
            "module_path": package_user_module(
                config.trainer_module_file, config.pipeline_root, STAGE
            ),
            "run_fn": None,
            "custom_config": json.dumps(config.trainer.custom_config),
        },
        output_dir=plan.output_dir,
    )
    if not serving_model_exists(artifacts["model"].uri):
        raise ValueError(
            f"run_fn finished but wrote no SavedModel under {artifacts['model'].uri}/Format-Serving"
        )
    return StageOutput(stage=STAGE, fingerprint=plan.fingerprint, artifacts=artifacts)
