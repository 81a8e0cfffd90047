"""The worker pool: results in order, failures re-raised, progress per unit."""

from __future__ import annotations

import pytest

from retrain.adapters.streaming.csv_units import DataFormatError, file_size
from retrain.adapters.streaming.pool import run_units


def test_results_come_back_in_unit_order_from_worker_processes(tmp_path):
    paths = []
    for size in (5, 1, 3):
        path = tmp_path / f"f{size}"
        path.write_bytes(b"x" * size)
        paths.append(str(path))
    done = []
    assert run_units(file_size, paths, workers=2, progress=lambda d, t: done.append((d, t)),
                     size=lambda path: len(path)) == [5, 1, 3]
    total = sum(len(path) for path in paths)
    assert len(done) == 3 and done[-1] == (total, total)


def test_progress_comes_as_each_unit_finishes_not_at_the_end(tmp_path):
    import time

    done = []
    # one quick unit and one slow one: the quick one must be reported before the slow ends
    run_units(time.sleep, [0.0, 3.0], workers=2,
              progress=lambda d, t: done.append((d, time.monotonic())),
              size=lambda seconds: 1)
    assert [d for d, _ in done] == [1, 2]
    assert done[1][1] - done[0][1] > 2.0


def test_a_worker_failure_is_raised_as_it_was_raised(tmp_path):
    from retrain.adapters.streaming.csv_units import plan_units

    good = tmp_path / "good.csv"
    good.write_text("a\n1\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,a\n1,2\n")
    with pytest.raises(DataFormatError, match="repeats column name"):
        run_units(plan_units_1mb, [str(good), str(bad)], workers=2)
    assert plan_units(str(good), 1 << 20)


def plan_units_1mb(path: str):
    """Module-level so spawned workers can import it."""
    from retrain.adapters.streaming.csv_units import plan_units

    return plan_units(path, 1 << 20)
