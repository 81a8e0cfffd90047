"""Prefect task for the Pusher: push a blessed model, then register it in MLflow."""

from __future__ import annotations

from prefect.runtime import flow_run

from tasks.pusher import core
from retrain.adapters import mlflow_registry as registry
from tasks.shared.caching import StagePlan
from retrain.domain.config import PipelineConfig
from retrain.domain.refs import EvaluationOutput, PushOutput, StageOutput
from tasks.shared.stage import run_stage, stage_task


def _push_and_register(
    plan: StagePlan, config: PipelineConfig, trainer: StageOutput, evaluation: EvaluationOutput
) -> PushOutput:
    champion = registry.champion(config.model_name)
    if evaluation.blessed and champion and champion.model_uri == trainer["model"].uri:
        # Publishing is idempotent: this very model is already serving.
        return PushOutput(
            stage=core.STAGE, fingerprint=plan.fingerprint, artifacts={}, pushed=True,
            reason=f"already the champion (version {champion.version}); not pushed again",
            serving_uri=champion.serving_uri, version=champion.serving_version,
            mlflow_run_id=champion.mlflow_run_id, registered_version=champion.version,
        )
    push = core.run(plan, config, trainer, evaluation)
    if not push.pushed:
        return push
    tags = {
        registry.FLOW_RUN_ID_TAG: str(flow_run.get_id() or ""),
        "retrain.run_name": str(flow_run.get_name() or ""),
        "retrain.model_fingerprint": trainer.fingerprint,
        "retrain.serving_version": push.version or "",
    }
    blessing = evaluation.blessing
    if blessing is not None:
        tags["retrain.blessing_rules"] = "; ".join(rule.message for rule in blessing.rules)[:5000]
        if blessing.forced_reason:
            tags["retrain.forced_reason"] = blessing.forced_reason
        if blessing.baseline_version:
            tags["retrain.baseline_version"] = blessing.baseline_version
    return registry.register_push(config, push, trainer["model"], evaluation, tags)


@stage_task(core.STAGE, core.plan)
def push_model(
    config: PipelineConfig, trainer: StageOutput, evaluation: EvaluationOutput
) -> PushOutput:
    """Push a blessed model to serving and register it; an unblessed one is not pushed."""
    return run_stage(core.STAGE, core.plan, _push_and_register, config, trainer, evaluation)
