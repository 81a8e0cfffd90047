"""A quiet terminal: what a run or a failing command writes goes to a log file, and the
terminal gets one line per failure.

A run started here (no deployment) runs Prefect, TFX and TensorFlow in this process; they
log every task state, a traceback per failure (four to ten for one failed stage) and C++
warnings. Without `--verbose`, file descriptors 1 and 2 point at
`<RETRAIN_HOME>/logs/<time>-<what>.log` while it runs; the Prefect API still receives the
run's logs (the UI shows them), and the command prints the outcome afterwards.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def log_path(what: str) -> Path:
    """A new log file under `<RETRAIN_HOME>/logs/` for `what` (e.g. a run's name)."""
    from retrain.settings import get_settings

    folder = Path(get_settings().home) / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return folder / f"{stamp}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', what)[:60]}.log"


@contextmanager
def into_log(path: Path, verbose: bool) -> Iterator[Path]:
    """Send this process's stdout and stderr (Python's and the C++ libraries') to `path`
    while the block runs, unless `verbose`."""
    if verbose:
        yield path
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with path.open("ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield path
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            # Prefect's temporary server says it stops when the process exits: not here.
            logging.getLogger("prefect").setLevel(logging.WARNING)


def report_unexpected(exc: BaseException, command: str) -> str:
    """Write `exc`'s traceback to a new log file; the one line to print instead."""
    path = log_path(command)
    path.write_text("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return (f"error: {type(exc).__name__}{': ' + text if text else ''} "
            f"(traceback in {path}; --verbose prints it)")
