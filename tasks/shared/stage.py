"""What every stage task shares: options, error wrapping, the completion marker."""

from __future__ import annotations

import re
import time
from typing import Any, Callable, TypeVar

from prefect import get_run_logger, task

from tasks.shared.caching import StageCache, StagePlan, finished_output, planned, write_marker
from tasks.shared.progress import advance_progress, stage_sink
from retrain.domain.progress import reporting_to
from retrain.domain.status import StageStatus
from retrain.domain.refs import StageOutput
from retrain.adapters.tfx import prepare_tf_environment
from retrain.domain.stages import Stage
from tasks.shared.tracking import claim_output, record_cached, record_stage

OutputT = TypeVar("OutputT", bound=StageOutput)


class StageError(RuntimeError):
    """A stage failed; the message names the stage and the problem."""

    def __init__(self, stage: Stage, problem: str):
        super().__init__(f"{stage} failed: {problem}")
        self.stage = stage
        self.problem = problem


def stage_task(stage: Stage, planner: Callable[..., StagePlan]) -> Any:
    """The @task decorator of every stage: named after it, cached by its plan.

    Results are small references, persisted as JSON so cache records stay readable and
    portable. No blind retries: a stage failing on bad input fails the same way again.
    """
    return task(
        name=stage.value,
        cache_policy=StageCache(planner=planner),
        on_completion=[advance_progress, record_cached],
        persist_result=True,
        result_serializer="json",
        retries=0,
    )


def describe_error(exc: BaseException) -> str:
    """One readable line: input errors as they are, others with their type; Beam noise cut."""
    text = str(exc).strip()
    # Beam appends "[while running 'Step/Name']" and sometimes a whole remote traceback.
    text = re.sub(r"\s*\[while running '[^']*'\]", "", text)
    lines = [line for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"^\w+(Error|Exception): ", line)]
    line = errors[-1] if errors else (lines[0] if lines else "")
    if not isinstance(exc, ValueError) and not errors:
        line = f"{type(exc).__name__}: {line}"
    return line[:2000]


def run_stage(
    stage: Stage,
    planner: Callable[..., StagePlan],
    core: Callable[..., OutputT],
    *args: Any,
) -> OutputT:
    """Plan and run a stage core, turn any failure into a StageError, then write the marker."""
    from prefect.runtime import flow_run, task_run

    logger = get_run_logger()
    started = time.monotonic()
    flow_run_id = flow_run.get_id()
    record_stage(flow_run_id, stage, StageStatus.RUNNING)
    prepare_tf_environment()  # before anything in the stage can import TensorFlow
    try:
        plan = planned(task_run.get_id(), planner, *args)
        # Another run writing the same outputs (identical runs started together): wait for
        # it, and use what it wrote if it finished.
        holder = claim_output(flow_run_id, stage, plan.output_dir, logger.info)
        done = finished_output(plan) if holder is not None else None
        if done is not None:
            seconds = time.monotonic() - started
            record_stage(flow_run_id, stage, StageStatus.CACHED, seconds=seconds,
                         output_uri=plan.output_dir,
                         message=f"written by run #{holder} while this run waited")
            logger.info("%s: run #%d wrote it (waited %.1fs)", stage, holder, seconds)
            return done
        logger.info("%s writing to %s", stage, plan.output_dir)
        with reporting_to(stage_sink(stage, flow_run_id, logger)):
            output = core(plan, *args)
    except Exception as exc:  # every failure must name its stage for the run record
        error = exc if isinstance(exc, StageError) else StageError(stage, describe_error(exc))
        record_stage(flow_run_id, stage, StageStatus.FAILED,
                     seconds=time.monotonic() - started, message=error.problem)
        if error is exc:
            raise
        raise error from exc
    write_marker(plan, output)
    seconds = time.monotonic() - started
    record_stage(flow_run_id, stage, StageStatus.COMPLETED, seconds=seconds,
                 output_uri=plan.output_dir)
    logger.info("%s finished in %.1fs", stage, seconds)
    return output
