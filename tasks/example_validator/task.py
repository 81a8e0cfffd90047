"""Prefect tasks for ExampleValidator: find the drift baseline, then validate the data."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.example_validator import core
from retrain.domain.config import PipelineConfig
from retrain.domain.refs import StageOutput, StatisticsBaseline, ValidationOutput
from retrain.services.comparisons import drift_baseline
from tasks.shared.stage import StageError, run_stage, stage_task
from tasks.shared.tracking import announce_data_findings


@task(name="resolve-drift-baseline", cache_policy=NO_CACHE)
def resolve_drift_baseline(config: PipelineConfig) -> StatisticsBaseline | None:
    """The statistics of the model's newest finished run, which drift is measured against."""
    baseline = drift_baseline(config.model_name)
    get_run_logger().info("drift baseline: %s", baseline.label if baseline else
                          "none (first finished run of this model: drift not checked)")
    return baseline


@stage_task(core.STAGE, core.plan)
def validate_examples(config: PipelineConfig, statistics: StageOutput, schema: StageOutput,
                      baseline: StatisticsBaseline | None = None) -> ValidationOutput:
    """Check statistics against the schema and the data gates; a `fail` gate or an anomaly
    (unless allowed) stops the run. Findings are announced as `retrain.data.drift`."""
    from prefect.runtime import flow_run

    try:
        output = run_stage(core.STAGE, core.plan, core.run, config, statistics, schema,
                           baseline)
    except StageError as error:
        if isinstance(error.__cause__, core.DataGateError):
            announce_data_findings(flow_run.get_id(), error.__cause__.findings,
                                   baseline.label if baseline else None, stopped=True)
        raise
    logger = get_run_logger()
    for line in output.notes:
        logger.info(line)
    for finding in output.findings:
        logger.warning("%s (%s)", finding.message, finding.action.value)
    announce_data_findings(flow_run.get_id(), output.findings, output.drift_baseline,
                           stopped=False)
    return output
