"""Progress inside a stage: the core reports how far it is, the caller decides where it shows.

Stage cores stay free of Prefect: they call `report(done, total, unit)`; the task layer
installs a sink (`reporting_to`) that logs and updates the run's progress artifact.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from enum import Enum
from typing import Callable, Iterator


class ProgressUnit(str, Enum):
    """What a stage counts."""

    BYTES = "bytes"
    ROWS = "rows"


@dataclass(frozen=True)
class Progress:
    """`done` of `total` `unit`s of the stage's work, and what the work is."""

    done: int
    total: int
    unit: ProgressUnit
    what: str

    @property
    def fraction(self) -> float:
        """Done as a share of the total, 0-1."""
        return min(1.0, self.done / self.total) if self.total else 1.0

    def describe(self) -> str:
        """E.g. '1.2 of 2.0 GB read (60%)' or '300,000 of 900,000 rows sampled (33%)'."""
        if self.unit is ProgressUnit.BYTES:
            scale, name = _scale(self.total)
            amount = f"{self.done / scale:.1f} of {self.total / scale:.1f} {name}"
        else:
            amount = f"{self.done:,} of {self.total:,} rows"
        return f"{amount} {self.what} ({100 * self.fraction:.0f}%)"


def _scale(total: int) -> tuple[float, str]:
    for scale, name in ((1 << 30, "GB"), (1 << 20, "MB"), (1 << 10, "KB")):
        if total >= scale:
            return float(scale), name
    return 1.0, "B"


Sink = Callable[[Progress], None]
_sink: ContextVar[Sink | None] = ContextVar("retrain_progress_sink", default=None)


def report(done: int, total: int, unit: ProgressUnit, what: str) -> None:
    """Tell whoever listens how far the current stage is (nothing happens if nobody does)."""
    sink = _sink.get()
    if sink is not None:
        sink(Progress(done=done, total=total, unit=unit, what=what))


def reporter(unit: ProgressUnit, what: str) -> Callable[[int, int], None]:
    """A `(done, total)` callback for adapters that count `unit`s of `what`."""
    return lambda done, total: report(done, total, unit, what)


@contextmanager
def reporting_to(sink: Sink) -> Iterator[None]:
    """Send the `report`s made inside the block to `sink`."""
    token = _sink.set(sink)
    try:
        yield
    finally:
        _sink.reset(token)
