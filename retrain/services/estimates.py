"""A run's cost and duration before it starts (`retrain runs estimate`, `runs start`).

The duration comes from the model's last finished run on the same data path (streaming or
Beam), scaled by epochs; otherwise from the input's row count at the measured throughput of
training and of the data stages on the path that will run. The price is the GPU config's
(`retrain/domain/costs.py`).
"""

from __future__ import annotations

from glob import glob
from pathlib import Path

from retrain.domain.config import PipelineConfig
from retrain.domain.costs import (
    BEAM_DATA_ROWS_PER_S,
    STREAMING_DATA_ROWS_PER_S,
    CostEstimate,
    data_stage_hours,
    estimate_cost,
    estimate_hours,
)
from retrain.domain.status import RunStatus
from retrain.services.configs import epochs, stored_config
from retrain.store import runs
from retrain.store.sessions import sessions

# Training throughput measured by benchmarks/recommender_recall.py on 2 CPU cores; used for
# a first run's estimate when no earlier run of the model says how long it took.
DEFAULT_EXAMPLES_PER_SECOND = 30_000.0
# Larger CSV files are not read whole for an estimate: rows are extrapolated from the size.
CSV_FULL_COUNT_BYTES = 64 << 20


def csv_rows(name: str) -> int:
    """Data rows of one CSV file (header excluded); extrapolated past 64 MiB."""
    size = Path(name).stat().st_size
    with open(name, "rb") as handle:
        if size <= CSV_FULL_COUNT_BYTES:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
        else:
            head = handle.read(1 << 20)
            lines = round(size * head.count(b"\n") / max(len(head), 1))
    return max(lines - 1, 0)


def input_rows(config: PipelineConfig) -> int | None:
    """Rows in a local CSV/Parquet input (cheap: newlines or Parquet metadata), else None.

    Input with no rows at all is refused (ValueError) with ExampleGen's own message.
    """
    if "://" in config.input.uri or config.input.format not in ("csv", "parquet"):
        return None
    files = [f for f in glob(str(Path(config.input.uri) / config.input.pattern)) if Path(f).is_file()]
    if not files:
        return None
    if config.input.format == "parquet":
        import pyarrow.parquet as pq

        rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    else:
        rows = sum(csv_rows(f) for f in files)
    if rows == 0:
        raise ValueError(config.input.empty_message(len(files)))
    return rows


def _same_path(snapshot: dict | None, config: PipelineConfig) -> bool:
    """Whether a stored run's data stages took the path this config's will."""
    stored = stored_config(snapshot)
    return stored is not None and stored.streaming == config.streaming


def estimate_run(config: PipelineConfig) -> tuple[CostEstimate | None, str]:
    """Cost and duration before start, and the basis it was made on (or why there is none)."""
    rows = input_rows(config)  # refuses empty input before anything else
    with sessions()() as session:
        model = runs.model_by_name(session, config.model_name)
        previous = next(
            (r for r in sorted(model.runs, key=lambda r: -r.run_number)
             if r.duration_seconds and r.status == RunStatus.COMPLETED
             and r.deleted_at is None
             and _same_path(r.config, config)),
            None,
        ) if model else None
        if previous is not None:
            hours = (previous.duration_seconds / 3600 * epochs(config)
                     / epochs(stored_config(previous.config)))
            low_high, basis = (hours * 0.8, hours * 1.2), (
                f"from {previous.name} #{previous.run_number} "
                f"({previous.duration_seconds:.0f} s, scaled by epochs)")
        else:
            if rows is None:
                return None, ("no estimate: no finished run of this model yet and the input's "
                              "size cannot be read cheaply")
            data_hours = data_stage_hours(rows, config.streaming)
            low_high = estimate_hours(rows, epochs(config), DEFAULT_EXAMPLES_PER_SECOND,
                                      overhead_hours=0.05 + data_hours)
            path, rate = (("streaming", STREAMING_DATA_ROWS_PER_S) if config.streaming
                          else ("Beam", BEAM_DATA_ROWS_PER_S))
            basis = (f"from {rows:,} input rows: training at {DEFAULT_EXAMPLES_PER_SECOND:,.0f} "
                     f"examples/s, data stages ({path}) at {rate:,.0f} rows/s")
    try:
        estimate = estimate_cost(config.gpu, hours=low_high)
    except ValueError as exc:
        return None, f"no estimate: {exc}"
    return estimate, basis
