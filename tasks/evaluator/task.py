"""Prefect tasks for the Evaluator: find the baseline, then evaluate and bless."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.evaluator import core
from retrain.adapters import mlflow_registry as registry
from retrain.services import serving
from retrain.domain.config import PipelineConfig
from retrain.domain.refs import ArtifactRef, BaselineRef, EvaluationOutput, StageOutput
from tasks.shared.stage import run_stage, stage_task


@task(name="resolve-baseline", cache_policy=NO_CACHE)
def resolve_baseline(config: PipelineConfig) -> BaselineRef | None:
    """The currently pushed (champion) model of this model name, if any, with its model type
    from the run that registered it (unknown if the run record cannot be read)."""
    logger = get_run_logger()
    champion = registry.champion(config.model_name)
    if champion is None:
        logger.info("baseline: none (first run: thresholds only)")
        return None
    try:
        model_type = serving.version_model_type(config.model_name, champion.version)
    except Exception:  # the run record is advisory: compare as before
        logger.warning("could not read the champion's model type", exc_info=True)
        model_type = None
    logger.info("baseline: %s (version %s, %s)", champion.model_uri, champion.version,
                model_type or "type unknown")
    return BaselineRef(type_name="Model", uri=champion.model_uri, version=champion.version,
                       model_type=model_type)


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
