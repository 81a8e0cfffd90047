"""Data insights read back from real StatisticsGen and SchemaGen artifacts.

Ten hand-written CSV rows go through the ExampleGen, StatisticsGen and SchemaGen stage cores
(real TFX executors, in-process Beam). A 3-day time holdout puts days 1-7 in train and days
8-10 in eval, so every number asserted below can be checked by hand.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow]

MODULE = Path(__file__).resolve().parents[2] / "synthetic" / "modules" / "rating_model.py"
DAY = 86_400
START = 1_700_000_000

# day, amount (empty on days 3 and 9), city, discount
ROWS = [
    (1, "1", "paris", "0.0"),
    (2, "2", "rome", "0.5"),
    (3, "", "paris", "0.0"),
    (4, "4", "oslo", "1.5"),
    (5, "5", "paris", "0.0"),
    (6, "6", "rome", "2.5"),
    (7, "7", "paris", "0.0"),
    (8, "8", "rome", "0.5"),
    (9, "", "paris", "0.0"),
    (10, "10", "rome", "1.0"),
]


@pytest.fixture(scope="module")
def run_outputs(tmp_path_factory, in_memory_beam):
    """Statistics and schema artifacts of the ten rows, computed once for this module."""
    from tasks.example_gen import core as example_gen
    from tasks.schema_gen import core as schema_gen
    from retrain.domain.config import PipelineConfig
    from tasks.statistics_gen import core as statistics_gen

    tmp = tmp_path_factory.mktemp("insights")
    data = tmp / "data"
    data.mkdir()
    lines = ["ts,amount,city,discount"]
    lines += [f"{START + day * DAY},{amount},{city},{discount}"
              for day, amount, city, discount in ROWS]
    (data / "rows.csv").write_text("\n".join(lines) + "\n")

    config = PipelineConfig.model_validate({
        "model_name": "insights",
        "pipeline_root": str(tmp / "root"),
        "input": {"uri": str(data), "format": "csv", "pattern": "*.csv",
                  "split": {"strategy": "time_holdout", "timestamp_column": "ts",
                            "holdout_days": 3}},
        "transform": {"module_file": str(MODULE)},
        "evaluator": {"label_key": "amount"},
        "beam": in_memory_beam,
    })
    examples = example_gen.run(example_gen.plan(config), config)
    statistics = statistics_gen.run(statistics_gen.plan(config, examples), config, examples)
    schema = schema_gen.run(schema_gen.plan(config, statistics), config, statistics)
    return statistics, schema


@pytest.fixture(scope="module")
def insights(run_outputs):
    from retrain.adapters.tfdv_insights import read_insights

    statistics, schema = run_outputs
    return read_insights(statistics["statistics"].uri, schema["schema"].uri,
                         html_report=statistics.html_report)


def _by_name(items):
    return {item.name: item for item in items}


def test_rows_per_split_follow_the_time_holdout(insights):
    assert [(s.split, s.rows, s.features) for s in insights.splits] == [
        ("train", 7, 4), ("eval", 3, 4)
    ]
    assert sum(s.rows for s in insights.splits) == len(ROWS)


def test_numeric_stats_match_the_rows_by_hand(insights):
    train, evaluation = insights.splits
    assert sorted(_by_name(train.numeric)) == ["amount", "discount", "ts"]

    # 1, 2, 4, 5, 6, 7; day 3's cell is empty. CSV ExampleGen writes an empty value list,
    # which TFDV counts as present (not missing) with no values.
    amount = _by_name(train.numeric)["amount"]
    assert (amount.count, amount.missing_pct) == (7, 0)
    assert amount.empty_pct == pytest.approx(100 / 7)
    assert amount.mean == pytest.approx(25 / 6)
    assert (amount.min, amount.max) == (1, 7)
    assert 4 <= amount.median <= 5  # TFDV's quantile estimate of the middle pair
    assert amount.zeros_pct == 0

    amount = _by_name(evaluation.numeric)["amount"]  # 8, 10; day 9 empty
    assert amount.empty_pct == pytest.approx(100 / 3)
    assert amount.mean == pytest.approx(9)
    assert amount.std_dev == pytest.approx(1)
    assert (amount.min, amount.max) == (8, 10)

    discount = _by_name(train.numeric)["discount"]  # 0, .5, 0, 1.5, 0, 2.5, 0
    assert (discount.missing_pct, discount.empty_pct) == (0, 0)
    assert discount.zeros_pct == pytest.approx(400 / 7)
    assert discount.mean == pytest.approx(4.5 / 7)
    assert _by_name(evaluation.numeric)["discount"].zeros_pct == pytest.approx(100 / 3)

    ts = _by_name(evaluation.numeric)["ts"]
    assert (ts.min, ts.max) == (START + 8 * DAY, START + 10 * DAY)


def test_categorical_stats_match_the_rows_by_hand(insights):
    train, evaluation = insights.splits
    city = _by_name(train.categorical)["city"]
    assert (city.count, city.missing_pct, city.unique) == (7, 0, 3)
    assert city.top_values == [("paris", 4), ("rome", 2), ("oslo", 1)]
    assert city.avg_length == pytest.approx((4 * 5 + 2 * 4 + 4) / 7)

    city = _by_name(evaluation.categorical)["city"]
    assert (city.count, city.unique) == (3, 2)
    assert city.top_values == [("rome", 2), ("paris", 1)]


def test_schema_types_domains_and_presence(insights):
    schema = _by_name(insights.schema)
    assert sorted(schema) == ["amount", "city", "discount", "ts"]
    assert {name: f.type for name, f in schema.items()} == {
        "amount": "INT", "city": "BYTES", "discount": "FLOAT", "ts": "INT"
    }
    assert schema["city"].domain.startswith("vocabulary of 3")
    assert {"oslo", "paris", "rome"} <= set(schema["city"].domain.split(": ")[1].split(", "))
    assert schema["ts"].required and schema["ts"].shape == "shape [1]"
    assert schema["amount"].shape is None  # its empty cells rule out a fixed shape


def test_render_names_every_feature_and_the_report(insights):
    from flows.cli.insights import render_insights

    assert Path(insights.html_report).is_file()
    text = render_insights(insights)
    for name in ("amount", "city", "discount", "ts"):
        assert name in text
    assert "split train: 7 rows, 4 features" in text
    assert "split eval: 3 rows, 4 features" in text
    assert "paris (4), rome (2), oslo (1)" in text
    assert "vocabulary of 3" in text
    assert f"HTML report: {insights.html_report}" in text


def test_missing_pct_counts_rows_without_the_feature():
    """TFRecord or Parquet input can lack a feature entirely; TFDV counts those rows missing."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import statistics_pb2

    from retrain.adapters.tfdv_insights import split_insights

    stats = text_format.Parse("""
        datasets {
          num_examples: 8
          features {
            path { step: "tags" }
            type: STRING
            string_stats {
              common_stats { num_non_missing: 6 num_missing: 2 min_num_values: 1
                             max_num_values: 3 tot_num_values: 12 }
              unique: 4
              top_values { value: "a" frequency: 5 }
              avg_length: 1
            }
          }
          features {
            path { step: "price" }
            type: FLOAT
            num_stats {
              common_stats { num_non_missing: 8 min_num_values: 0 max_num_values: 2
                             tot_num_values: 9 }
              mean: 2.5 num_zeros: 3
            }
          }
        }""", statistics_pb2.DatasetFeatureStatisticsList())
    split = split_insights("train", stats)
    tags, price = split.categorical[0], split.numeric[0]
    assert (tags.missing_pct, tags.empty_pct, tags.top_values) == (25, 0, [("a", 5)])
    # Multivalent with some empty rows: how many are empty is not in TFDV's counts.
    assert (price.missing_pct, price.empty_pct) == (0, None)
    assert price.zeros_pct == pytest.approx(100 * 3 / 9)
