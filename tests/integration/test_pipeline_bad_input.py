"""Bad input fails at the right stage with a message naming it; nothing is pushed;
earlier artifacts are kept; a run after the fix succeeds and reuses valid upstream stages."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow]

SCHEMA = Path(__file__).resolve().parents[1] / "testdata" / "interactions_schema.pbtxt"
BEAM = {"args": ["--direct_running_mode=in_memory"]}


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """One pipeline root for the module, so valid upstream stages are shared like in real use."""
    return tmp_path_factory.mktemp("bad-input")


def _run(root: Path, data_dir: Path, **overrides):
    from flows.training_pipeline import training_pipeline
    from retrain.domain.examples import rating_config

    values = {
        "model_name": "bad-input",
        "pipeline_root": str(root / "pipelines"),
        "pusher": {"serving_base": str(root / "serving")},
        "trainer": {"train_steps": 100, "eval_steps": 10},
        "beam": BEAM,
    }
    config = rating_config(data_dir, **{**values, **overrides})
    return config, training_pipeline(config, return_state=True)


def _assert_failed_at(state, stage: str, problem: str, root: Path) -> None:
    assert state.is_failed()
    assert f"{stage} failed: " in state.message, state.message
    assert problem in state.message, state.message
    assert not (root / "serving").exists()  # nothing pushed
    _assert_recorded_failed_at(state, stage, problem)


def _assert_recorded_failed_at(state, stage: str, problem: str) -> None:
    """The state store shows the failed stage and why; later stages are skipped."""
    from retrain.store import runs
    from retrain.domain.stages import STAGES
    from retrain.store.sessions import sessions

    with sessions()() as session:
        run = runs.run_for_flow_run(session, str(state.state_details.flow_run_id))
        assert run is not None and run.status == "failed"
        assert run.error_stage == stage and problem in run.error_message
        statuses = {s.stage: s.status for s in run.stages}
        failed_at = STAGES.index(stage)
        assert statuses[stage] == "failed" and problem in run.stages[failed_at].message
        assert all(statuses[s] == "skipped" for s in STAGES[failed_at + 1:])


def _copy_data(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for csv in src.glob("*.csv"):
        shutil.copy(csv, dst / csv.name)
    return dst


def test_missing_input_path(prefect_harness, root):
    _, state = _run(root, root / "no-such-dir")
    _assert_failed_at(state, "ExampleGen", "does not exist", root)


def test_empty_data(prefect_harness, root):
    empty = root / "empty"
    empty.mkdir()
    (empty / "part-0.csv").write_text("buyer_id,product_id,category,city,timestamp,quantity,rating\n")
    _, state = _run(root, empty)
    _assert_failed_at(state, "ExampleGen", "input data is empty", root)


def test_malformed_csv_rows(prefect_harness, root, tiny_interactions):
    data = _copy_data(tiny_interactions, root / "malformed")
    first = sorted(data.glob("*.csv"))[0]
    with first.open("a") as handle:
        handle.write("B000001,P000001,cat_01,city_01,1700000000,2,4.5,EXTRA\n")
    line = first.read_text().count("\n")
    _, state = _run(root, data)
    _assert_failed_at(state, "ExampleGen", f"{first} line {line}: 8 field(s) where the header "
                      "has 7", root)
    assert "EXTRA" in state.message


def test_malformed_csv_rows_on_the_beam_path_too(prefect_harness, root, tiny_interactions):
    data = _copy_data(tiny_interactions, root / "malformed-beam")
    with sorted(data.glob("*.csv"))[0].open("a") as handle:
        handle.write("B000001,P000001,cat_01,city_01,1700000000,2,4.5,EXTRA\n")
    _, state = _run(root, data, data={"engine": "beam"})
    _assert_failed_at(state, "ExampleGen", "malformed CSV row", root)


def test_a_value_that_is_not_a_number_names_its_column_and_line(prefect_harness, root,
                                                                tiny_interactions):
    data = _copy_data(tiny_interactions, root / "not-a-number")
    first = sorted(data.glob("*.csv"))[0]
    lines = first.read_text().splitlines()
    # beyond the rows the column kinds are inferred from (the first 4 MB)
    padding = lines[1:] * (4_400_000 // len(first.read_bytes()) + 1)
    lines = lines[:1] + padding + ["B000001,P000001,cat_01,city_01,1700000000,2,n/a"]
    first.write_text("\n".join(lines) + "\n")
    _, state = _run(root, data)
    _assert_failed_at(state, "ExampleGen", f"{first} line {len(lines)}, column 'rating': 'n/a' "
                      "is not a number", root)


def test_bom_and_crlf_csv_trains_with_the_right_column_names(prefect_harness, root,
                                                            tiny_interactions):
    from tensorflow_metadata.proto.v0 import statistics_pb2

    data = _copy_data(tiny_interactions, root / "bom-crlf")
    for path in data.glob("*.csv"):
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    # its own model and serving base: the other tests check that nothing was pushed
    _, state = _run(root, data, model_name="bom-crlf",
                    pusher={"serving_base": str(root / "bom-serving")})
    assert state.is_completed(), state.message  # Transform found 'buyer_id', Trainer ran
    summary = state.result()
    assert sum(summary.rows.values()) == 2_000
    stats = Path(summary.statistics_report).parent / "statistics" / "Split-train"
    proto = statistics_pb2.DatasetFeatureStatisticsList.FromString(
        (stats / "FeatureStats.pb").read_bytes())
    names = sorted(f.path.step[0] for f in proto.datasets[0].features)
    assert names == sorted(["buyer_id", "product_id", "category", "city", "timestamp",
                            "quantity", "rating"])


def test_label_column_that_does_not_exist(prefect_harness, root, tiny_interactions):
    config, state = _run(root, tiny_interactions, label_column="stars")
    _assert_failed_at(state, "StatisticsGen", "label column 'stars' does not exist", root)
    # ExampleGen's artifacts are kept for the next run
    examples = list((root / "pipelines" / "bad-input" / "ExampleGen").glob("*/_COMPLETE.json"))
    assert len(examples) == 1


def test_anomalies_against_a_curated_schema_then_fixed(prefect_harness, root, tiny_interactions):
    wrong = root / "wrong_schema.pbtxt"
    wrong.write_text(
        SCHEMA.read_text().replace('name: "city"       type: BYTES', 'name: "city"       type: INT')
    )
    _, state = _run(root, tiny_interactions, schema={"schema_file": str(wrong)})
    _assert_failed_at(state, "ExampleValidator", "data anomalies against the schema", root)
    assert "city" in state.message

    # Fix the schema: the run succeeds and reuses ExampleGen and StatisticsGen.
    _, fixed = _run(root, tiny_interactions, schema={"schema_file": str(SCHEMA)})
    assert fixed.is_completed(), fixed.message
    states = {t.stage: t.state for t in fixed.result().stages}
    assert states["ExampleGen"] == "Cached" and states["StatisticsGen"] == "Cached"
    assert states["SchemaGen"] == "Completed" and states["ExampleValidator"] == "Completed"
    assert fixed.result().outcome == "pushed"


def test_not_blessed_is_an_outcome_not_a_failure(prefect_harness, root, tiny_interactions):
    metrics = [{"class_name": "MeanAbsoluteError", "upper_bound": 0.0001,
                "higher_is_better": False}]
    config, state = _run(
        root, tiny_interactions, model_name="never-blessed",
        evaluator={"metrics": metrics},
    )
    assert state.is_completed() and state.name == "NotBlessed"
    summary = state.result()
    assert summary.outcome == "not_blessed" and not summary.push.pushed
    assert "mean_absolute_error" in summary.push.reason
    assert not (root / "serving" / "never-blessed").exists()
    from retrain.adapters import mlflow_registry as registry

    assert registry.champion("never-blessed") is None


def test_bad_overrides_fail_the_run_naming_the_field_before_any_stage(prefect_harness, root,
                                                                     tiny_interactions):
    from flows.training_pipeline import training_pipeline
    from retrain.domain.examples import rating_config

    config = rating_config(tiny_interactions, model_name="bad-overrides",
                           pipeline_root=str(root / "pipelines"), beam=BEAM)
    state = training_pipeline(config, overrides={"trainer": {"train_steps": -5}},
                              return_state=True)
    assert state.is_failed()
    assert "trainer.train_steps" in state.message, state.message
    assert not (root / "pipelines" / "bad-overrides").exists()  # no stage ran
