"""Pusher: copy a blessed model to the serving directory; never push an unblessed one."""

from __future__ import annotations

from tasks.shared.caching import StagePlan
from retrain.domain.config import PipelineConfig
from tasks.shared.fingerprint import fingerprint
from retrain.domain.refs import EvaluationOutput, PushOutput, StageOutput, StatisticsOutput
from retrain.adapters.tfx import proto_json, run_executor
from retrain.domain.stages import Stage

STAGE = Stage.PUSHER
EXECUTOR = "tfx.components.pusher.executor.Executor"


def plan(config: PipelineConfig, trainer: StageOutput, evaluation: EvaluationOutput,
         statistics: StatisticsOutput | None = None) -> StagePlan:
    """Fingerprint: the model, its blessing and the destination (the statistics only go
    into the model card, and the model already depends on them)."""
    parts = {
        "model": trainer.fingerprint,
        "blessing": evaluation.fingerprint,
        "destination": serving_dir(config),
    }
    return StagePlan.for_stage(config, STAGE, fingerprint(STAGE, parts))


def serving_dir(config: PipelineConfig) -> str:
    """<serving_base>/<model_name>: versions of one model live side by side."""
    return f"{config.pusher.serving_base.rstrip('/')}/{config.model_name}"


def run(
    plan: StagePlan, config: PipelineConfig, trainer: StageOutput, evaluation: EvaluationOutput
) -> PushOutput:
    """Run TFX's Pusher executor; it checks the blessing itself and marks not-pushed."""
    from tfx.proto import pusher_pb2

    destination = pusher_pb2.PushDestination(
        filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=serving_dir(config))
    )
    artifacts = run_executor(
        EXECUTOR,
        inputs={"model": trainer["model"], "model_blessing": evaluation["blessing"]},
        outputs={"pushed_model": "PushedModel"},
        exec_properties={"push_destination": proto_json(destination), "custom_config": "null"},
        output_dir=plan.output_dir,
    )
    pushed_model = artifacts["pushed_model"].to_tfx()
    if pushed_model.get_int_custom_property("pushed") != 1:
        reason = "model not blessed: " + ("; ".join(evaluation.failed_checks) or "thresholds failed")
        return PushOutput(
            stage=STAGE, fingerprint=plan.fingerprint, artifacts=artifacts,
            pushed=False, reason=reason,
        )
    return PushOutput(
        stage=STAGE,
        fingerprint=plan.fingerprint,
        artifacts=artifacts,
        pushed=True,
        reason=(f"force-blessed: {evaluation.blessing.forced_reason}"
                if evaluation.blessing and evaluation.blessing.forced_reason
                else "blessed by the Evaluator"),
        serving_uri=pushed_model.get_string_custom_property("pushed_destination"),
        version=pushed_model.get_string_custom_property("pushed_version"),
    )
