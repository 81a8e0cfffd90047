"""The streaming data path writes what TFX's Beam executors write, on the same input.

One small CSV (with empty cells) through ExampleGen, StatisticsGen and SchemaGen on both
paths: the same rows land in the same splits (TFX's hash of the same bytes), SchemaGen infers
the same schema, and the statistics agree - exactly for counts, min/max and the values of
low-cardinality features; means and deviations to 1e-6 relative; unique counts of
high-cardinality features within 3% (the streaming path's TFDV sketch estimates them); and
quantile-based histograms to within one bucket's worth of rows.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow]

ROWS = 20_000


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """Synthetic interactions as one CSV, with ~1% of city and quantity cells emptied."""
    from synthetic import SyntheticConfig, generate

    out = tmp_path_factory.mktemp("equal")
    source = generate(SyntheticConfig(rows=ROWS, seed=11), out / "source")
    target = out / "data"
    target.mkdir()
    with open(target / "data.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        for path in source.files:
            with open(path, newline="") as rows:
                reader = csv.reader(rows)
                header = next(reader)
                if handle.tell() == 0:
                    writer.writerow(header)
                for index, row in enumerate(reader):
                    if index % 97 == 0:
                        row[header.index("city")] = ""
                    if index % 89 == 0:
                        row[header.index("quantity")] = ""
                    writer.writerow(row)
    return target


def _stages(root: Path, data: Path, engine: str) -> dict:
    from retrain.adapters.tfx import prepare_tf_environment
    from retrain.domain.examples import recommender_config
    from tasks.example_gen import core as example_gen
    from tasks.schema_gen import core as schema_gen
    from tasks.statistics_gen import core as statistics_gen

    prepare_tf_environment()
    config = recommender_config(
        data, "retrieval", pipeline_root=str(root / engine),
        beam={"args": ["--direct_running_mode=in_memory"]}, data={"engine": engine},
    )
    examples = example_gen.run(example_gen.plan(config), config)
    statistics = statistics_gen.run(statistics_gen.plan(config, examples), config, examples)
    schema = schema_gen.run(schema_gen.plan(config, statistics), config, statistics)
    return {"examples": examples, "statistics": statistics, "schema": schema}


@pytest.fixture(scope="module")
def both(data_dir, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("roots")
    return {engine: _stages(root, data_dir, engine) for engine in ("beam", "streaming")}


def _records(examples, split: str) -> set[bytes]:
    import tensorflow as tf

    files = tf.io.gfile.glob(f"{examples['examples'].split_uri(split)}/*")
    return {
        tf.train.Example.FromString(r.numpy()).SerializeToString(deterministic=True)
        for r in tf.data.TFRecordDataset(files, compression_type="GZIP")
    }


def test_the_same_rows_land_in_the_same_splits(both):
    beam, streaming = both["beam"]["examples"], both["streaming"]["examples"]
    assert beam["examples"].split_names == streaming["examples"].split_names == ["train", "eval"]
    for split in ("train", "eval"):
        assert _records(beam, split) == _records(streaming, split)
    assert sum(len(_records(streaming, s)) for s in ("train", "eval")) == ROWS
    assert streaming["examples"].mlmd["customProperties"] == beam["examples"].mlmd[
        "customProperties"]


def test_schemagen_infers_the_same_schema(both):
    from tfx.utils import io_utils

    def schema(stages):
        uri = stages["schema"]["schema"].uri
        return io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(uri))

    assert schema(both["beam"]) == schema(both["streaming"])


def _features(stages, split: str) -> dict:
    from tfx.components.statistics_gen import stats_artifact_utils

    artifact = stages["statistics"]["statistics"].to_tfx()
    dataset = stats_artifact_utils.load_statistics(artifact, split).proto().datasets[0]
    return dataset, {f.path.step[0]: f for f in dataset.features}


@pytest.mark.parametrize("split", ["train", "eval"])
def test_statistics_agree_within_the_stated_tolerance(both, split):
    beam_set, beam = _features(both["beam"], split)
    stream_set, stream = _features(both["streaming"], split)
    assert beam_set.num_examples == stream_set.num_examples
    assert beam.keys() == stream.keys()
    for name, ours in stream.items():
        theirs = beam[name]
        assert ours.type == theirs.type, name
        kind = ours.WhichOneof("stats")
        mine, other = getattr(ours, kind), getattr(theirs, kind)
        for field in ("num_non_missing", "num_missing", "min_num_values", "max_num_values",
                      "tot_num_values"):
            assert getattr(mine.common_stats, field) == getattr(other.common_stats, field), (
                name, field)
        if kind == "num_stats":
            assert (mine.min, mine.max, mine.num_zeros) == (other.min, other.max, other.num_zeros)
            assert mine.mean == pytest.approx(other.mean, rel=1e-6), name
            assert mine.std_dev == pytest.approx(other.std_dev, rel=1e-6), name
            per_bucket = beam_set.num_examples / 10
            for a, b in zip(mine.histograms[0].buckets, other.histograms[0].buckets):
                assert abs(a.sample_count - b.sample_count) <= per_bucket, name
        else:
            assert mine.unique == pytest.approx(other.unique, rel=0.03), name
            if other.unique <= 100:  # low cardinality: the sketch is exact
                assert mine.unique == other.unique
                top = lambda s: [(v.value, v.frequency) for v in s.top_values]  # noqa: E731
                assert top(mine) == top(other), name
