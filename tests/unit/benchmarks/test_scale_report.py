"""The scale benchmark's report: per-stage windows, peak memory in them, the three targets.

`benchmarks/scale.py` is a script: it is loaded from its path (with `measure.py` beside it).
"""

from __future__ import annotations

from benchmark_modules import load_benchmark

scale = load_benchmark("scale.py", "scale_bench")
GB = 1 << 30


def _case(seconds: float, stages: dict[str, tuple[float, float]], samples) -> tuple:
    from measure import Trace

    trace = Trace(seconds=seconds, returncode=0, samples=samples)
    outcome = {"ok": True, "message": "", "stages": [
        {"stage": name, "status": "completed", "start": start, "end": end}
        for name, (start, end) in stages.items()]}
    return trace, outcome


def test_peak_memory_is_taken_inside_each_stage_window(capsys):
    trace, outcome = _case(30.0, {"ExampleGen": (10.0, 20.0), "StatisticsGen": (20.0, 25.0)},
                           [(5.0, 5 * GB), (12.0, 1 * GB), (19.0, 2 * GB), (22.0, 3 * GB)])
    scale.report_case("flow", "1m", 1_000_000, trace, outcome)
    lines = capsys.readouterr().out.splitlines()
    assert lines[3].split() == ["ExampleGen", "10.0", "100,000", "2.00"]
    assert lines[4].split() == ["StatisticsGen", "5.0", "200,000", "3.00"]
    assert lines[5].split()[:2] == ["whole", "child"] and lines[5].split()[-5] == "5.00"


def test_targets_are_met_or_missed_from_the_figures(capsys):
    flow_1m = _case(100.0, {"ExampleGen": (0, 10), "StatisticsGen": (10, 20)}, [(1, 2 * GB)])
    flow_10m = _case(1400.0, {"ExampleGen": (0, 100), "StatisticsGen": (100, 200)},
                     [(1, 5 * GB)])
    ldr_1m = _case(600.0, {"ExampleGen": (0, 80), "StatisticsGen": (80, 120)}, [(1, 4 * GB)])
    scale.report_targets({("flow", "1m"): flow_1m, ("flow", "10m"): flow_10m,
                          ("ldr", "1m"): ldr_1m})
    out = capsys.readouterr().out
    assert "peak RSS    1m:  2.00 GB (≤ 4 GB: met)" in out
    assert "peak RSS   10m:  5.00 GB (≤ 4 GB: MISSED)" in out
    assert "= 14.0× (≤ 13×: MISSED)" in out
    assert "LocalDagRunner 120 s, flow 20 s = 6.0× faster (≥ 5×: met)" in out
