"""ExampleGen reads CSV, Parquet and TFRecord, and splits by hash buckets or time holdout.

Runs the real ExampleGen executors (in-process Beam) directly through the stage core, then
reads the written tf.Examples back.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow]

ROWS = 1_000
MODULE = Path(__file__).resolve().parents[2] / "synthetic" / "modules" / "rating_model.py"


def _examples(ref, split: str) -> list:
    import tensorflow as tf

    files = tf.io.gfile.glob(f"{ref.split_uri(split)}/*")
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP")
    return [tf.train.Example.FromString(raw.numpy()) for raw in dataset]


def _run_example_gen(tmp_path: Path, fmt: str, split: dict, engine: str = "auto"):
    from synthetic import SyntheticConfig, generate
    from tasks.example_gen import core
    from retrain.domain.config import PipelineConfig
    from retrain.adapters.tfx import prepare_tf_environment

    prepare_tf_environment()
    data = generate(SyntheticConfig(rows=ROWS, seed=3, format=fmt, rows_per_file=400),
                    tmp_path / f"data-{fmt}")
    config = PipelineConfig.model_validate({
        "model_name": "formats",
        "pipeline_root": str(tmp_path / "root"),
        "input": {"uri": str(data.out_dir), "format": fmt, "pattern": data.file_pattern,
                  "split": split},
        "transform": {"module_file": str(MODULE)},
        "evaluator": {"label_key": "rating_xf"},
        "beam": {"args": ["--direct_running_mode=in_memory"]},
        "data": {"engine": engine},
    })
    output = core.run(core.plan(config), config)
    return output["examples"]


@pytest.mark.parametrize("engine", ["streaming", "beam"])
@pytest.mark.parametrize("fmt", ["csv", "parquet", "tfrecord"])
def test_every_format_yields_all_rows_in_an_80_20_hash_split(tmp_path, fmt, engine):
    examples = _run_example_gen(tmp_path, fmt, {"strategy": "hash"}, engine)
    assert examples.split_names == ["train", "eval"]
    train, evaluation = _examples(examples, "train"), _examples(examples, "eval")
    assert len(train) + len(evaluation) == ROWS
    assert 0.72 < len(train) / ROWS < 0.88  # 8:2 hash buckets
    features = set(train[0].features.feature)
    assert features == {"buyer_id", "product_id", "category", "city", "timestamp",
                        "quantity", "rating"}


def test_streaming_example_gen_reports_bytes_read_as_it_goes(tmp_path):
    from retrain.domain.progress import ProgressUnit, reporting_to

    reports = []
    with reporting_to(reports.append):
        _run_example_gen(tmp_path, "csv", {"strategy": "hash"}, "streaming")
    files = sorted((tmp_path / "data-csv").glob("*.csv"))  # 400-row shards
    data_bytes = sum(p.stat().st_size - len(p.read_bytes().split(b"\n", 1)[0]) - 1
                     for p in files)
    assert [r.done for r in reports][-1] == data_bytes == reports[0].total
    assert all(r.unit is ProgressUnit.BYTES and r.what == "read" for r in reports)
    assert len(reports) == len(files)  # one report per unit (here: per file)


def test_time_holdout_puts_exactly_the_last_days_in_eval(tmp_path):
    days = 10
    examples = _run_example_gen(
        tmp_path, "csv",
        {"strategy": "time_holdout", "timestamp_column": "timestamp", "holdout_days": days},
    )

    def stamps(split):
        return [e.features.feature["timestamp"].int64_list.value[0]
                for e in _examples(examples, split)]

    train, evaluation = stamps("train"), stamps("eval")
    assert len(train) + len(evaluation) == ROWS and evaluation and train
    cutoff = max(evaluation) - days * 86_400
    assert max(train) <= cutoff < min(evaluation)
