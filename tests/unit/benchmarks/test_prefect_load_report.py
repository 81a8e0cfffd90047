"""The Prefect load benchmark's figures: nearest-rank percentiles and the side-by-side table.

`benchmarks/prefect_load.py` is a script: it is loaded from its path.
"""

from __future__ import annotations

import math

from benchmark_modules import load_benchmark

bench = load_benchmark("prefect_load.py", "prefect_load_bench")


def test_percentiles_are_nearest_rank():
    values = [float(v) for v in range(1, 21)]  # 1..20
    assert bench.percentile(values, 0.5) == 10.0
    assert bench.percentile(values, 0.95) == 19.0
    assert bench.percentile([7.0], 0.95) == 7.0
    assert math.isnan(bench.percentile([], 0.5))


def _figures(backend, ok, failed, reconciled):
    return {"backend": backend, "ok": ok, "failed": failed, "first_error": "unavailable: x",
            "triggers_per_s": 0.5, "p50": 12.0, "p95": 30.0, "all_final_s": 600.0,
            "runs": ok + 1, "recorded": ok - 1, "reconciled": reconciled, "states": "Completed"}


def test_the_report_puts_backends_side_by_side():
    table = bench.report([_figures("sqlite", 44, 6, 45), _figures("postgresql", 50, 0, 51)])
    lines = table.splitlines()
    assert lines[0].split() == ["sqlite", "postgresql"]
    row = {line[:30].strip(): line[30:].split() for line in lines[1:]}
    assert row["triggers exited 0"] == ["44", "50"]
    assert row["triggers failed"] == ["6", "0"]
    assert row["trigger → Running p95 (s)"] == ["30.0", "30.0"]
    assert row["flow runs / records (hooks)"] == ["45", "/", "43", "51", "/", "49"]
    assert row["records after reconcile"] == ["45", "51"]
