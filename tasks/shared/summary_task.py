"""Prefect task that writes the run's markdown summary artifact."""

from __future__ import annotations

import re
import time

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.runtime import flow_run

from retrain.adapters.prefect import prefect_client
from retrain.domain.config import PipelineConfig
from retrain.domain.stages import STAGES
from retrain.domain.refs import (
    EvaluationOutput,
    PushOutput,
    StatisticsOutput,
    TrainerOutput,
    ValidationOutput,
)
from tasks.shared.summary import RunSummary, StageTiming, build_summary, render_markdown


def _stage_of(run) -> str:
    """Stage name of a task run named '<Stage>-<suffix>'."""
    return run.name.rsplit("-", 1)[0]


def _read_stage_runs(flow_run_id: str, expected: int, patience_s: float) -> list:
    """Task runs of the flow run, once `expected` stages show a final state.

    Prefect records task states from events asynchronously, so a read right after the last
    stage finished can still see it Running; wait briefly (bounded) for the record.
    """
    deadline = time.monotonic() + patience_s
    while True:
        with prefect_client() as client:
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )
        final = [r for r in runs if r.state and r.state.is_final() and _stage_of(r) in STAGES]
        if len(final) >= expected or time.monotonic() > deadline:
            return runs
        time.sleep(0.5)


def stage_timings(flow_run_id: str, patience_s: float = 15.0) -> list[StageTiming]:
    """Stage states and wall times of one flow run, from the Prefect API."""
    runs = _read_stage_runs(flow_run_id, len(STAGES), patience_s)
    timings = []
    for run in runs:
        stage = _stage_of(run)
        if stage not in STAGES:
            continue
        seconds = 0.0
        if run.start_time and run.end_time:
            seconds = (run.end_time - run.start_time).total_seconds()
        timings.append(StageTiming(stage=stage, state=run.state_name or "?", seconds=seconds))
    return sorted(timings, key=lambda t: STAGES.index(t.stage))


@task(name="summarize-run", cache_policy=NO_CACHE)
def summarize_run(
    config: PipelineConfig,
    statistics: StatisticsOutput,
    validation: ValidationOutput,
    trainer: TrainerOutput,
    evaluation: EvaluationOutput,
    push: PushOutput,
) -> RunSummary:
    """Collect timings and outcomes and publish them as a markdown artifact."""
    summary = build_summary(
        config.model_name,
        stage_timings(flow_run.get_id()),
        statistics,
        validation,
        evaluation,
        push,
        trainer=trainer,
        thresholds=config.evaluator.metrics,
    )
    key = re.sub(r"[^a-z0-9-]", "-", f"{config.model_name}-run-summary")
    create_markdown_artifact(markdown=render_markdown(summary), key=key,
                             description="Training run summary")
    return summary
