"""Two identical runs started at the same moment, in two processes on one PostgreSQL
store (two pods, or a double click on "Run"): both miss the stage cache and plan the same
output directories. Every stage is written once, by one of them; the other waits and uses
it, and both complete. Before, the second failed at ExampleGen with a FileNotFoundError on
the first's temporary shard."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from retrain.domain.status import RunStatus
from retrain.store.migrate import upgrade

pytestmark = [pytest.mark.slow, pytest.mark.service]
HELPER = Path(__file__).with_name("identical_run.py")
STAGES = ["ExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator",
          "Transform", "Trainer", "Evaluator", "Pusher"]


def test_two_identical_runs_at_once_write_each_stage_once(postgres_db, tmp_path):
    from synthetic import SyntheticConfig, generate

    data = generate(SyntheticConfig(rows=3_000, seed=3, format="parquet"), tmp_path / "data")
    upgrade(postgres_db)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = []
    for name in ("first", "second"):
        env = {**os.environ, "RETRAIN_DATABASE_URL": postgres_db,
               "RETRAIN_HOME": str(tmp_path / f"home-{name}"),
               "PREFECT_HOME": str(tmp_path / f"prefect-{name}"),
               "RETRAIN_OVERLAP_POLL_SECONDS": "1"}
        env.pop("PREFECT_API_URL", None)
        procs.append(subprocess.Popen(
            [sys.executable, str(HELPER), str(data.out_dir), str(tmp_path), str(barrier), "2"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [proc.communicate(timeout=900)[0] for proc in procs]
    for proc, output in zip(procs, outputs):
        assert proc.returncode == 0, output[-3000:]
        assert output.strip().splitlines()[-1] == "Completed"

    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from retrain.store import runs

    with Session(create_engine(postgres_db)) as session:
        recorded = runs.list_runs(session)
        assert sorted(r.status for r in recorded) == [RunStatus.COMPLETED] * 2
        by_stage = {stage: [] for stage in STAGES}
        for run in recorded:
            for row in run.stages:
                by_stage[row.stage.value].append((row.status.value, row.output_uri, row.message))
    for stage, rows in by_stage.items():
        # One run wrote it; the other was served what it wrote (cache hit or after waiting).
        assert sorted(status for status, _, _ in rows) == ["cached", "completed"], (stage, rows)
        assert rows[0][1] == rows[1][1], (stage, rows)
    # Both planned ExampleGen together: the later one waited for the first's rows.
    waited = [m for _, _, m in by_stage["ExampleGen"] if m]
    assert len(waited) == 1 and waited[0].startswith("written by run #")
    shards = list(Path(by_stage["ExampleGen"][0][1], "examples").rglob("*"))
    assert not [p for p in shards if ".tmp" in p.name]
