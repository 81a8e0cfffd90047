"""Per-epoch metrics: one record per epoch, to a file beside the model and to any sinks.

The library run_fn writes `<model_run>/epochs.jsonl` (durable: it survives a trainer running
in another pod) and hands each record to the sinks registered in this process. The platform
attaches sinks (state store, MLflow, Prefect) with `epoch_sinks(...)`; the trainer does not
know about them. No TensorFlow import here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from retrain.domain.refs import EpochMetrics

EPOCHS_FILE = "epochs.jsonl"


class EpochSink(Protocol):
    """Receives each epoch's metrics as training goes."""

    def on_epoch(self, record: EpochMetrics) -> None:
        """Called once per finished epoch, in order."""


_SINKS: list[EpochSink] = []


@contextmanager
def epoch_sinks(*sinks: EpochSink) -> Iterator[None]:
    """Attach sinks for the duration of a training run in this process."""
    _SINKS.extend(sinks)
    try:
        yield
    finally:
        for sink in sinks:
            _SINKS.remove(sink)


def publish(record: EpochMetrics, model_run_dir: str) -> None:
    """Append the record to the epochs file and pass it to every attached sink."""
    from tfx.dsl.io import fileio

    path = f"{model_run_dir.rstrip('/')}/{EPOCHS_FILE}"
    previous = ""
    if fileio.exists(path):
        with fileio.open(path, "r") as handle:
            previous = handle.read()
    # gfile has no append on object stores: rewrite the small file whole.
    with fileio.open(path, "w") as handle:
        handle.write(previous + record.model_dump_json() + "\n")
    for sink in list(_SINKS):
        sink.on_epoch(record)


def write_all(records: list[EpochMetrics], model_run_dir: str) -> None:
    """Write the epochs file afresh with `records` (a resumed Trainer's earlier epochs);
    the sinks already received them when they were first published."""
    from tfx.dsl.io import fileio

    fileio.makedirs(model_run_dir)
    with fileio.open(f"{model_run_dir.rstrip('/')}/{EPOCHS_FILE}", "w") as handle:
        handle.write("".join(record.model_dump_json() + "\n" for record in records))


def read_epochs(model_run_dir: str) -> list[EpochMetrics]:
    """The epochs a run recorded (empty if it recorded none)."""
    from tfx.dsl.io import fileio

    path = f"{model_run_dir.rstrip('/')}/{EPOCHS_FILE}"
    if not fileio.exists(path):
        return []
    with fileio.open(path, "r") as handle:
        return [EpochMetrics.model_validate(json.loads(line)) for line in handle if line.strip()]
