"""Prefect tasks for the Evaluator: find the baseline, then evaluate and bless."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.evaluator import core
from retrain.adapters import mlflow_registry as registry
from retrain.domain.config import PipelineConfig
from retrain.domain.refs import ArtifactRef, BaselineRef, EvaluationOutput, StageOutput
from tasks.shared.stage import run_stage, stage_task


@task(name="resolve-baseline", cache_policy=NO_CACHE)
def resolve_baseline(config: PipelineConfig) -> BaselineRef | None:
    """The currently pushed (champion) model of this model name, if any."""
    champion = registry.champion(config.model_name)
    baseline = (
        BaselineRef(type_name="Model", uri=champion.model_uri, version=champion.version)
        if champion else None
    )
    get_run_logger().info(
        "baseline: %s", baseline.uri if baseline else "none (first run: thresholds only)"
    )
    return baseline


@stage_task(core.STAGE, core.plan)
def evaluate_model(
    config: PipelineConfig,
    examples: StageOutput,
    transform: StageOutput,
    trainer: StageOutput,
    schema: StageOutput,
    baseline: ArtifactRef | None,
) -> EvaluationOutput:
    """Compute the metrics on the eval split (and the trivial predictors', from the train
    split) and decide the blessing."""
    return run_stage(
        core.STAGE, core.plan, core.run, config, examples, transform, trainer, schema, baseline
    )
