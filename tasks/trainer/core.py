"""Trainer: the user's run_fn(fn_args) through TFX's GenericExecutor."""

from __future__ import annotations

import json
from pathlib import Path

from tasks.shared.caching import StagePlan
from tasks.shared.config import PipelineConfig
from tasks.shared.fingerprint import fingerprint, module_sources
from tasks.shared.refs import StageOutput, TrainerOutput
from tasks.shared.tfx_runtime import package_user_module, proto_json, run_executor

STAGE = "Trainer"
EXECUTOR = "tfx.components.trainer.executor.GenericExecutor"
LIBRARY_FN = "tasks.trainer.recommender.run_fn"
LIBRARY_FILE = str(Path(__file__).with_name("recommender.py"))


def user_function(config: PipelineConfig) -> tuple[str | None, str | None, dict]:
    """(module_file, library run_fn path, custom_config) for this run."""
    spec = config.recommender
    if spec is not None:
        return None, LIBRARY_FN, spec.model_dump(mode="json")
    return config.trainer_module_file, None, dict(config.trainer.custom_config)


def plan(config: PipelineConfig, transform: StageOutput, schema: StageOutput) -> StagePlan:
    """Fingerprint: transform outputs, schema, trainer config and run_fn's module sources."""
    module_file, function, custom_config = user_function(config)
    parts = {
        "transform": transform.fingerprint,
        "schema": schema.fingerprint,
        "trainer": config.trainer.model_dump(exclude={"module_file", "custom_config"}),
        "custom_config": custom_config,
        "function": function,
    }
    sources = module_sources(module_file) if module_file else _library_sources()
    fp = fingerprint(STAGE, parts, sources)
    return StagePlan.for_stage(config, STAGE, fp)


def serving_model_exists(model_uri: str) -> bool:
    """TFX's layout: <model>/Format-Serving/saved_model.pb."""
    from tfx.dsl.io import fileio
    from tfx.utils import path_utils

    return fileio.exists(f"{path_utils.serving_model_path(model_uri)}/saved_model.pb")


def _library_sources() -> list[str]:
    """The library run_fn's code: the trainer package and the helpers it imports."""
    here = Path(__file__).parent
    helpers = [here.parent / "evaluator" / "metrics.py", here.parent / "transform" / "features.py"]
    return sorted(str(p) for p in [*here.glob("*.py"), *helpers])


def seed_tensorflow(seed: int | None) -> None:
    """Make run_fn reproducible without touching the user's module."""
    if seed is None:
        return
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def run(
    plan: StagePlan, config: PipelineConfig, transform: StageOutput, schema: StageOutput
) -> TrainerOutput:
    """Train; fail if run_fn returned without writing a serving model."""
    from tfx.proto import trainer_pb2

    module_file, function, custom_config = user_function(config)
    recommender = function is not None
    # The library run_fn seeds itself from training.seed.
    seed_tensorflow(None if recommender else config.trainer.seed)
    # A recommender trains for training.epochs over the whole split, not a step budget.
    train_steps = 0 if recommender else config.trainer.train_steps
    eval_steps = 0 if recommender else config.trainer.eval_steps

    artifacts = run_executor(
        EXECUTOR,
        inputs={
            "examples": transform["transformed_examples"],
            "transform_graph": transform["transform_graph"],
            "schema": schema["schema"],
        },
        outputs={"model": "Model", "model_run": "ModelRun"},
        exec_properties={
            "train_args": proto_json(trainer_pb2.TrainArgs(num_steps=train_steps)),
            "eval_args": proto_json(trainer_pb2.EvalArgs(num_steps=eval_steps)),
            "module_file": None,
            "module_path": module_file
            and package_user_module(module_file, config.pipeline_root, STAGE),
            "run_fn": function,
            "custom_config": json.dumps(custom_config),
        },
        output_dir=plan.output_dir,
    )
    if not serving_model_exists(artifacts["model"].uri):
        raise ValueError(
            f"run_fn finished but wrote no SavedModel under {artifacts['model'].uri}/Format-Serving"
        )
    return TrainerOutput(
        stage=STAGE, fingerprint=plan.fingerprint, artifacts=artifacts,
        **training_record(artifacts["model"].uri, artifacts["model_run"].uri),
    )


def training_record(model_uri: str, model_run_uri: str) -> dict:
    """Epochs and device facts the library run_fn left beside the model (none for user modules)."""
    from tfx.dsl.io import fileio

    from tasks.trainer.epochs import read_epochs

    record: dict = {"epochs": read_epochs(model_run_uri)}
    summary = f"{model_uri.rstrip('/')}/recommender.json"
    if fileio.exists(summary):
        with fileio.open(summary, "r") as handle:
            facts = json.load(handle)
        record.update(strategy=facts.get("strategy"), replicas=facts.get("replicas"),
                      gpus_visible=facts.get("gpus_visible", []))
    return record
