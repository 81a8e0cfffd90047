"""A pool of spawned worker processes that runs one function over many units of input."""

from __future__ import annotations

import multiprocessing
import os
import sys
import types
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence, TypeVar

from retrain.adapters.tfx import prepare_tf_environment

UnitT = TypeVar("UnitT")
ResultT = TypeVar("ResultT")


def worker_count(requested: int | None, units: int) -> int:
    """Workers to start: the requested number (default: every core), at most one per unit."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(requested or cores or 1, units))


@contextmanager
def _bare_main() -> Iterator[None]:
    """Start workers without re-importing the parent's `__main__` in each of them.

    A spawned child imports the parent's main module first (to unpickle what it defines);
    under `prefect`, `python -m flows.demo` or pytest that is Prefect and every flow: seconds
    and a few hundred MB per worker for nothing. The work functions live in importable
    modules, so the children get an empty main instead.
    """
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def run_units(
    fn: Callable[[UnitT], ResultT],
    units: Sequence[UnitT],
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    size: Callable[[UnitT], int] = lambda unit: 1,
    inline: bool = False,
) -> list[ResultT]:
    """`fn(unit)` for every unit in worker processes; results in the units' order.

    Workers are *spawned*, never forked: the parent has TensorFlow and Prefect's threads
    loaded, and a forked copy of those can deadlock. The first failure cancels what has not
    started and is re-raised here as it was raised in the worker. As each unit finishes,
    `progress(done, total)` runs in this process, counting `size(unit)` (bytes, say) of the
    units done against all of them. With one worker, one unit or `inline` (small inputs,
    where starting workers costs more than it saves) the units run here, one by one.
    """
    if not units:
        return []
    total = sum(size(unit) for unit in units)
    done_size = 0

    def finished(unit: UnitT) -> None:
        nonlocal done_size
        done_size += size(unit)
        if progress is not None:
            progress(done_size, total)

    count = worker_count(workers, len(units))
    if inline or count == 1:
        here = []
        for unit in units:
            here.append(fn(unit))
            finished(unit)
        return here
    prepare_tf_environment()  # spawned workers inherit the environment, not the imports
    context = multiprocessing.get_context("spawn")
    results: dict[int, ResultT] = {}
    with ProcessPoolExecutor(max_workers=count, mp_context=context) as executor:
        with _bare_main():  # workers start as units are submitted
            futures = {executor.submit(fn, unit): index for index, unit in enumerate(units)}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                error = future.exception()
                if error is not None:
                    for other in pending:
                        other.cancel()
                    raise error
                index = futures[future]
                results[index] = future.result()
                finished(units[index])
    return [results[index] for index in range(len(units))]
