"""Prefect task that writes the run's markdown summary artifact."""

from __future__ import annotations

import re

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.runtime import flow_run

from tasks.shared.config import PipelineConfig
from tasks.shared.progress import STAGES
from tasks.shared.refs import EvaluationOutput, PushOutput, StatisticsOutput, ValidationOutput
from tasks.shared.summary import RunSummary, StageTiming, build_summary, render_markdown


def stage_timings(flow_run_id: str) -> list[StageTiming]:
    """Stage states and wall times of one flow run, from the Prefect API."""
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    timings = []
    for run in runs:
        stage = run.name.rsplit("-", 1)[0]
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
    )
    key = re.sub(r"[^a-z0-9-]", "-", f"{config.model_name}-run-summary")
    create_markdown_artifact(markdown=render_markdown(summary), key=key,
                             description="Training run summary")
    return summary
