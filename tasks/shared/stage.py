"""What every stage task shares: options, error wrapping, the completion marker."""

from __future__ import annotations

import time
from typing import Any, Callable, TypeVar

from prefect import get_run_logger

from tasks.shared.caching import StagePlan, write_marker
from tasks.shared.refs import StageOutput
from tasks.shared.tfx_runtime import prepare_tf_environment

OutputT = TypeVar("OutputT", bound=StageOutput)


class StageError(RuntimeError):
    """A stage failed; the message names the stage and the problem."""

    def __init__(self, stage: str, problem: str):
        super().__init__(f"{stage} failed: {problem}")
        self.stage = stage
        self.problem = problem


# Stage results are small references; JSON keeps the cache records readable and portable.
STAGE_TASK_OPTIONS: dict[str, Any] = {
    "persist_result": True,
    "result_serializer": "json",
    "retries": 0,
}


def run_stage(plan: StagePlan, core: Callable[..., OutputT], *args: Any) -> OutputT:
    """Run a stage core, turn any failure into a StageError, then write the marker."""
    logger = get_run_logger()
    logger.info("%s writing to %s", plan.stage, plan.output_dir)
    started = time.monotonic()
    prepare_tf_environment()  # before anything in the stage can import TensorFlow
    try:
        output = core(plan, *args)
    except StageError:
        raise
    except Exception as exc:  # every failure must name its stage for the run record
        # Our own input checks raise ValueError with a readable message; keep other types.
        problem = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
        raise StageError(plan.stage, problem) from exc
    write_marker(plan, output)
    logger.info("%s finished in %.1fs", plan.stage, time.monotonic() - started)
    return output
