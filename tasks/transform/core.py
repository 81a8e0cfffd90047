"""Transform: tf.Transform analysis and transformation from the user's preprocessing_fn."""

from __future__ import annotations

import json

from tasks.shared.caching import StagePlan
from tasks.shared.config import PipelineConfig
from tasks.shared.fingerprint import fingerprint, module_sources
from tasks.shared.refs import StageOutput
from tasks.shared.tfx_runtime import package_user_module, run_executor

STAGE = "Transform"
EXECUTOR = "tfx.components.transform.executor.Executor"


def plan(config: PipelineConfig, examples: StageOutput, schema: StageOutput) -> StagePlan:
    """Fingerprint: examples, schema, transform config and the user module's sources."""
    parts = {
        "examples": examples.fingerprint,
        "schema": schema.fingerprint,
        "custom_config": config.transform.custom_config,
    }
    fp = fingerprint(STAGE, parts, module_sources(config.transform.module_file))
    return StagePlan.for_stage(config, STAGE, fp)


def run(
    plan: StagePlan, config: PipelineConfig, examples: StageOutput, schema: StageOutput
) -> StageOutput:
    """Run TFX's Transform executor. Transform statistics are off: StatisticsGen has them."""
    artifacts = run_executor(
        EXECUTOR,
        inputs={"examples": examples["examples"], "schema": schema["schema"]},
        outputs={"transform_graph": "TransformGraph", "transformed_examples": "Examples"},
        exec_properties={
            "module_file": None,
            "module_path": package_user_module(
                config.transform.module_file, config.pipeline_root, STAGE
            ),
            "preprocessing_fn": None,
            "custom_config": json.dumps(config.transform.custom_config),
            "splits_config": None,
            "force_tf_compat_v1": 0,
            "disable_statistics": 1,
        },
        output_dir=plan.output_dir,
        beam_args=config.beam.args,
    )
    return StageOutput(stage=STAGE, fingerprint=plan.fingerprint, artifacts=artifacts)
