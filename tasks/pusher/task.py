"""Prefect task for the Pusher: push a blessed model, register it in MLflow, serve it.

`push_and_register` is also what `retrain runs push` (and the `push-run` flow) runs for a
blessed run whose push never happened, so a late push is the same push.
"""

from __future__ import annotations

import logging

from prefect.runtime import flow_run

from tasks.pusher import core, publication
from retrain.adapters import mlflow_registry as registry
from tasks.shared.caching import StagePlan
from retrain.domain.config import PipelineConfig
from retrain.domain.refs import EvaluationOutput, PushOutput, StageOutput, StatisticsOutput
from retrain.services import lifecycle, serving
from tasks.shared.stage import run_stage, stage_task

logger = logging.getLogger("retrain.pusher")


def push_and_register(
    plan: StagePlan, config: PipelineConfig, trainer: StageOutput, evaluation: EvaluationOutput,
    statistics: StatisticsOutput | None = None, *, run_flow_run_id: str, run_name: str,
    actor: str, reason: str | None = None, operation_flow_run_id: str | None = None,
) -> PushOutput:
    """Push a blessed model, register it as the new champion, serve it through
    `models.config` and record the push; an unblessed model is not pushed."""
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
        registry.FLOW_RUN_ID_TAG: run_flow_run_id,
        "retrain.run_name": run_name,
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
    push = registry.register_push(config, push, trainer["model"], evaluation, tags)
    change = serving.record_push(
        serving.PushedVersion(model_name=config.model_name, version=push.registered_version,
                              serving_uri=push.serving_uri, serving_version=push.version),
        actor=actor, reason=reason or push.reason, run_flow_run_id=run_flow_run_id,
        flow_run_id=operation_flow_run_id)
    replaced = change.previous_version if change else (champion.version if champion else None)
    try:
        published = publication.publish(publication.facts(
            config, push, evaluation, statistics,
            run_id=change.run.id if change and change.run else "", run_name=run_name,
            flow_run_id=run_flow_run_id, champion_version=replaced))
    except Exception as exc:  # the model serves and is registered: the metadata is advisory
        logger.warning("model card and STAC item of %s v%s not written: %s",
                       config.model_name, push.registered_version, exc, exc_info=True)
        return push.model_copy(update={"publication_error": f"{type(exc).__name__}: {exc}"})
    return push.model_copy(update={"model_card_uri": published.card_uri,
                                   "stac_item_uri": published.item_uri})


def _push_in_pipeline(
    plan: StagePlan, config: PipelineConfig, trainer: StageOutput, evaluation: EvaluationOutput,
    statistics: StatisticsOutput | None,
) -> PushOutput:
    flow_run_id = str(flow_run.get_id() or "")
    run = lifecycle.identify_flow_run(flow_run_id) if flow_run_id else None
    name = f"{run.name} #{run.run_number}" if run else str(flow_run.get_name() or "")
    return push_and_register(plan, config, trainer, evaluation, statistics,
                             run_flow_run_id=flow_run_id, run_name=name,
                             actor=f"training-pipeline ({name})")


@stage_task(core.STAGE, core.plan)
def push_model(
    config: PipelineConfig, trainer: StageOutput, evaluation: EvaluationOutput,
    statistics: StatisticsOutput | None = None,
) -> PushOutput:
    """Push a blessed model to serving and register it; an unblessed one is not pushed."""
    return run_stage(core.STAGE, core.plan, _push_in_pipeline, config, trainer, evaluation,
                     statistics)
