"""The `retrain` command's exit codes (see `retrain --help`)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What a command's exit status says about its outcome."""

    DONE = 0  # a run that ended completed or not blessed, too
    RUN_FAILED = 1  # the run failed, crashed or was cancelled
    BAD_INPUT = 2  # invalid config or schedule, unknown run id or model name
    NAME_TAKEN = 3
    REFUSED = 4  # the run's current state does not allow the operation
    UNAVAILABLE = 5  # the Prefect API, state store or MLflow unreachable (or overloaded)
    ERROR = 6  # an unexpected error: one line here, the traceback in a log file
