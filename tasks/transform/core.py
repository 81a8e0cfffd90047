"""Transform: tf.Transform analysis and transformation from the user's preprocessing_fn."""

from __future__ import annotations

import json
from pathlib import Path

from tasks.shared.caching import StagePlan
from retrain.domain.config import PipelineConfig
from tasks.shared.fingerprint import fingerprint, module_sources
from retrain.domain.refs import StageOutput
from retrain.adapters.tfx import package_user_module, run_executor
from retrain.domain.stages import Stage

STAGE = Stage.TRANSFORM
EXECUTOR = "tfx.components.transform.executor.Executor"
LIBRARY_FN = "tasks.transform.preprocessing.preprocessing_fn"
LIBRARY_FILE = str(Path(__file__).with_name("preprocessing.py"))


def user_function(config: PipelineConfig) -> tuple[str | None, str | None, dict]:
    """(module_file, library preprocessing_fn path, custom_config) for this run."""
    if config.features is not None:
        return None, LIBRARY_FN, {"features": config.features.model_dump(mode="json")}
    return config.transform.module_file, None, dict(config.transform.custom_config)


def plan(config: PipelineConfig, examples: StageOutput, schema: StageOutput) -> StagePlan:
    """Fingerprint: examples, schema, transform config and the user module's sources."""
    module_file, function, custom_config = user_function(config)
    parts = {
        "examples": examples.fingerprint,
        "schema": schema.fingerprint,
        "custom_config": custom_config,
        "function": function,
    }
    fp = fingerprint(STAGE, parts, module_sources(module_file or LIBRARY_FILE))
    return StagePlan.for_stage(config, STAGE, fp)


def run(
    plan: StagePlan, config: PipelineConfig, examples: StageOutput, schema: StageOutput
) -> StageOutput:
    """Run TFX's Transform executor. Transform statistics are off: StatisticsGen has them."""
    module_file, function, custom_config = user_function(config)
    artifacts = run_executor(
        EXECUTOR,
        inputs={"examples": examples["examples"], "schema": schema["schema"]},
        outputs={"transform_graph": "TransformGraph", "transformed_examples": "Examples"},
        exec_properties={
            "module_file": None,
            "module_path": module_file
            and package_user_module(module_file, config.pipeline_root, STAGE),
            "preprocessing_fn": function,
            "custom_config": json.dumps(custom_config),
            "splits_config": None,
            "force_tf_compat_v1": 0,
            "disable_statistics": 1,
        },
        output_dir=plan.output_dir,
        beam_args=config.beam.args,
    )
    return StageOutput(stage=STAGE, fingerprint=plan.fingerprint, artifacts=artifacts)
