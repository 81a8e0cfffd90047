"""Trainer: the user's run_fn(fn_args) through TFX's GenericExecutor."""

from __future__ import annotations

import json
from pathlib import Path

from tasks.shared.caching import StagePlan
from retrain.domain.config import PipelineConfig
from tasks.shared.fingerprint import fingerprint, module_sources
from retrain.domain.recommender import GpuConfig
from retrain.domain.refs import StageOutput, TrainerOutput
from retrain.adapters.tfx import package_user_module, proto_json, run_executor
from retrain.domain.stages import Stage

STAGE = Stage.TRAINER
EXECUTOR = "tfx.components.trainer.executor.GenericExecutor"
LIBRARY_FN = "tasks.trainer.run_fn.run_fn"
LIBRARY_FILE = str(Path(__file__).with_name("run_fn.py"))


def user_function(config: PipelineConfig) -> tuple[str | None, str | None, dict]:
    """(module_file, library run_fn path, custom_config) for this run."""
    spec = config.recommender
    if spec is not None:
        return None, LIBRARY_FN, spec.model_dump(mode="json")
    return config.trainer_module_file, None, dict(config.trainer.custom_config)


def cache_inputs(custom_config: dict) -> dict:
    """custom_config without what only says where and how the Trainer is scheduled."""
    kept = {key: value for key, value in custom_config.items() if key != "checkpoint_dir"}
    if isinstance(kept.get("gpu"), dict):
        kept["gpu"] = {key: value for key, value in kept["gpu"].items()
                       if key not in GpuConfig.ORCHESTRATION_FIELDS}
    return kept


def plan(config: PipelineConfig, transform: StageOutput, schema: StageOutput) -> StagePlan:
    """Fingerprint: transform outputs, schema, trainer config and run_fn's module sources."""
    module_file, function, custom_config = user_function(config)
    custom_config = cache_inputs(custom_config) if function else custom_config
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


def checkpoint_dir(plan: StagePlan) -> str:
    """Epoch checkpoints of a Trainer that may be interrupted: beside its output directory
    (which each attempt empties), keyed by the same fingerprint."""
    return f"{plan.output_dir}.checkpoints"


def require_gpus(gpu: GpuConfig) -> list[str]:
    """The GPUs TensorFlow sees; raises if GPUs are requested and none is visible.

    The library run_fn calls it through `choose_strategy`; the Trainer calls it before a user
    module's run_fn, which would otherwise train on the CPU without a word.
    """
    import tensorflow as tf

    visible = [device.name for device in tf.config.list_physical_devices("GPU")]
    if gpu.enabled and not visible:
        raise RuntimeError(
            f"GPUs requested (count={gpu.count}) but none is visible to TensorFlow; check the "
            "pod's GPU limit and node selector, the NVIDIA driver and CUDA_VISIBLE_DEVICES"
        )
    return visible


def serving_model_exists(model_uri: str) -> bool:
    """TFX's layout: <model>/Format-Serving/saved_model.pb."""
    from tfx.dsl.io import fileio
    from tfx.utils import path_utils

    return fileio.exists(f"{path_utils.serving_model_path(model_uri)}/saved_model.pb")


def _library_sources() -> list[str]:
    """The library run_fn's code: the trainer package and the helpers it imports."""
    here = Path(__file__).parent
    helpers = [here.parent / "evaluator" / "metrics.py", here.parent / "transform" / "preprocessing.py"]
    return sorted(str(p) for p in [*here.glob("*.py"), *helpers])


def seed_tensorflow(seed: int | None) -> None:
    """Make run_fn reproducible without touching the user's module."""
    if seed is None:
        return
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def run(
    plan: StagePlan, config: PipelineConfig, transform: StageOutput, schema: StageOutput,
    checkpoints: str | None = None,
) -> TrainerOutput:
    """Train; fail if run_fn returned without writing a serving model.

    `checkpoints` (library models only): checkpoint every epoch there and resume from the
    last checkpoint found.
    """
    from tfx.proto import trainer_pb2

    module_file, function, custom_config = user_function(config)
    recommender = function is not None
    gpus_visible: list[str] = []
    # Transform names raw `examples` when it left the graph to the Trainer's input pipeline.
    raw = "transformed_examples" not in transform.artifacts
    if recommender:
        custom_config["raw_examples"] = raw
        if checkpoints:
            custom_config["checkpoint_dir"] = checkpoints
    elif config.gpu.enabled:
        gpus_visible = require_gpus(config.gpu)
    # The library run_fn seeds itself from training.seed.
    seed_tensorflow(None if recommender else config.trainer.seed)
    # A recommender trains for training.epochs over the whole split, not a step budget.
    train_steps = 0 if recommender else config.trainer.train_steps
    eval_steps = 0 if recommender else config.trainer.eval_steps

    artifacts = run_executor(
        EXECUTOR,
        inputs={
            "examples": transform["examples" if raw else "transformed_examples"],
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
        **training_record(artifacts["model"].uri, artifacts["model_run"].uri, gpus_visible),
    )


def training_record(model_uri: str, model_run_uri: str, gpus_visible: list[str]) -> dict:
    """Epochs and device facts the library run_fn left beside the model (none for user modules)."""
    from tfx.dsl.io import fileio

    from tasks.trainer.epochs import read_epochs

    record: dict = {"epochs": read_epochs(model_run_uri), "gpus_visible": gpus_visible}
    summary = f"{model_uri.rstrip('/')}/recommender.json"
    if fileio.exists(summary):
        with fileio.open(summary, "r") as handle:
            facts = json.load(handle)
        record.update({key: facts.get(key) for key in (
            "strategy", "replicas", "epochs_run", "resumed_from_epoch", "optimizer_steps",
            "best_epoch", "best_epoch_metric", "best_epoch_value", "fit")})
        record["gpus_visible"] = facts.get("gpus_visible", [])
    return record
