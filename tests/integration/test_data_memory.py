"""Memory does not grow with rows: the data stages at N and 10×N rows, each in a fresh process.

ExampleGen, StatisticsGen, SchemaGen and Transform's analysis run on the streaming path with
two workers and 1 MB units (so that both sizes stream through workers, as a 2 GB file does
with 64 MB units); the peak RSS of each child's whole process tree must be within 1.3×.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
N = 100_000


def _stages(data: str, root: str, out: str) -> None:
    """Child: the data stages through their cores, rows per split to `out`."""
    from retrain.adapters.tfx import prepare_tf_environment
    from retrain.domain.examples import recommender_config
    from tasks.example_gen import core as example_gen
    from tasks.schema_gen import core as schema_gen
    from tasks.statistics_gen import core as statistics_gen
    from tasks.transform import core as transform

    prepare_tf_environment()
    config = recommender_config(
        data, "retrieval", pipeline_root=root,
        data={"engine": "streaming", "workers": 2, "unit_mb": 1},
        transform={"analysis_rows": 20_000},
        beam={"args": ["--direct_running_mode=in_memory"]},
    )
    examples = example_gen.run(example_gen.plan(config), config)
    statistics = statistics_gen.run(statistics_gen.plan(config, examples), config, examples)
    schema = schema_gen.run(schema_gen.plan(config, statistics), config, statistics)
    graph = transform.run(transform.plan(config, examples, schema), config, examples, schema)
    assert "transformed_examples" not in graph.artifacts  # applied in the Trainer instead
    Path(out).write_text(json.dumps({s: v.rows for s, v in statistics.splits.items()}))


def _peak(tmp_path: Path, rows: int) -> tuple[int, dict]:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from measure import run_traced
    from synthetic import SyntheticConfig, generate

    data = generate(SyntheticConfig(rows=rows, seed=5, rows_per_file=rows),
                    tmp_path / f"data-{rows}").out_dir
    out = tmp_path / f"rows-{rows}.json"
    code = (f"import sys; sys.path.insert(0, {str(REPO)!r}); "
            f"sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"import test_data_memory as t; "
            f"t._stages({str(data)!r}, {str(tmp_path / f'root-{rows}')!r}, {str(out)!r})")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    trace = run_traced([sys.executable, "-c", code], env, REPO, tmp_path / f"log-{rows}.txt")
    log = (tmp_path / f"log-{rows}.txt").read_text()
    assert trace.returncode == 0, log[-3000:]
    return trace.peak_rss, json.loads(out.read_text())


def test_peak_memory_of_the_data_stages_does_not_grow_with_rows(tmp_path):
    small, small_rows = _peak(tmp_path, N)
    large, large_rows = _peak(tmp_path, 10 * N)
    assert sum(small_rows.values()) == N and sum(large_rows.values()) == 10 * N
    assert large <= 1.3 * small, (
        f"peak RSS {small / 2**30:.2f} GB at {N:,} rows, {large / 2**30:.2f} GB at {10 * N:,}")
