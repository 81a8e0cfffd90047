"""The stage cache on Prefect's cache machinery: hits, misses, and deleted artifacts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from prefect import flow

from tasks.shared.caching import MARKER, StagePlan
from tasks.shared.fingerprint import fingerprint
from retrain.domain.refs import ArtifactRef, StageOutput
from retrain.domain.stages import Stage
from tasks.shared.stage import StageError, describe_error, run_stage, stage_task

CALLS: list[int] = []
PLANS: list[int] = []
# A toy core run as a stage (stages are typed: any real one will do).
TOY = Stage.EXAMPLE_GEN


def toy_plan(root: str, value: int) -> StagePlan:
    PLANS.append(value)
    if value == -2:
        raise ValueError("no plan for -2")
    return StagePlan(
        stage=TOY, fingerprint=fingerprint(TOY, {"value": value}),
        output_dir=f"{root}/Toy/{value}",
    )


def _toy_core(plan: StagePlan, root: str, value: int) -> StageOutput:
    CALLS.append(value)
    if value < 0:
        raise ValueError(f"value {value} is negative")
    out = Path(plan.output_dir) / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "data.txt").write_text(str(value))
    ref = ArtifactRef(type_name="Examples", uri=str(out))
    return StageOutput(stage=TOY, fingerprint=plan.fingerprint, artifacts={"out": ref})


@stage_task(TOY, toy_plan)
def toy(root: str, value: int) -> StageOutput:
    return run_stage(TOY, toy_plan, _toy_core, root, value)


@flow
def run_toy(root: str, value: int):
    return toy(root, value, return_state=True)


@pytest.fixture(autouse=True)
def _reset():
    CALLS.clear()
    PLANS.clear()


def test_second_call_is_cached_and_returns_the_same_reference(prefect_harness, tmp_path):
    first = run_toy(str(tmp_path), 1)
    second = run_toy(str(tmp_path), 1)
    assert (first.name, second.name) == ("Completed", "Cached")
    assert CALLS == [1]
    assert second.result() == first.result()
    assert (tmp_path / "Toy" / "1" / MARKER).is_file()


def test_a_run_plans_its_stage_once_for_the_cache_key_and_the_body(prefect_harness, tmp_path):
    """Planning lists and fingerprints a stage's inputs (on gs://, requests): once per run,
    its error included."""
    assert run_toy(str(tmp_path), 5).name == "Completed"
    assert PLANS == [5] and CALLS == [5]
    PLANS.clear()
    failed = toy(str(tmp_path), -2, return_state=True)
    assert failed.is_failed() and PLANS == [-2]
    with pytest.raises(StageError, match="ExampleGen failed: no plan for -2"):
        failed.result()


def test_different_inputs_or_root_miss(prefect_harness, tmp_path):
    run_toy(str(tmp_path), 1)
    assert run_toy(str(tmp_path), 2).name == "Completed"
    assert run_toy(str(tmp_path / "elsewhere"), 1).name == "Completed"
    assert CALLS == [1, 2, 1]


def test_deleted_artifacts_are_rebuilt_not_served_from_a_stale_record(prefect_harness, tmp_path):
    run_toy(str(tmp_path), 3)
    shutil.rmtree(tmp_path / "Toy")
    again = run_toy(str(tmp_path), 3)
    assert again.name == "Completed" and CALLS == [3, 3]
    assert Path(again.result()["out"].uri, "data.txt").read_text() == "3"
    assert run_toy(str(tmp_path), 3).name == "Cached"


def test_a_process_without_the_record_gets_it_from_the_marker(prefect_harness, tmp_path):
    """A new pod or machine (its own Prefect storage) sharing the pipeline root: the stage
    is Cached there too, with the reference the first run returned."""
    from prefect.settings import PREFECT_RESULTS_LOCAL_STORAGE_PATH, temporary_settings

    first = run_toy(str(tmp_path / "root"), 4)
    with temporary_settings({PREFECT_RESULTS_LOCAL_STORAGE_PATH: tmp_path / "new-pod"}):
        elsewhere = run_toy(str(tmp_path / "root"), 4)
        assert elsewhere.name == "Cached" and CALLS == [4]
        assert elsewhere.result() == first.result()
        assert any((tmp_path / "new-pod").iterdir())  # its own record, made from the marker
        # A marker that is not the stage's output: the stage runs again.
        (tmp_path / "root" / "Toy" / "5").mkdir(parents=True)
        (tmp_path / "root" / "Toy" / "5" / MARKER).write_text('{"stage": "ExampleGen"}')
        assert run_toy(str(tmp_path / "root"), 5).name == "Completed" and CALLS == [4, 5]
        (tmp_path / "root" / "Toy" / "6").mkdir(parents=True)
        (tmp_path / "root" / "Toy" / "6" / MARKER).write_text("{not json")
        assert run_toy(str(tmp_path / "root"), 6).name == "Completed" and CALLS == [4, 5, 6]


def test_failure_names_the_stage_and_leaves_no_marker(prefect_harness, tmp_path):
    state = toy(str(tmp_path), -1, return_state=True)
    assert state.is_failed()
    with pytest.raises(StageError, match=r"^ExampleGen failed: value -1 is negative$"):
        state.result()
    assert not (tmp_path / "Toy" / "-1" / MARKER).exists()
    # a failed run is not cached: the next call runs again
    assert toy(str(tmp_path), -1, return_state=True).is_failed() and CALLS == [-1, -1]


def test_plan_layout_and_keys():
    from retrain.domain.examples import taxi_config

    config = taxi_config(pipeline_root="gs://bucket/root/")
    plan = StagePlan.for_stage(config, "Trainer", "ab" * 32)
    assert plan.output_dir == "gs://bucket/root/chicago-taxi/Trainer/abababababababab"
    assert plan.marker.endswith("/Trainer/abababababababab/_COMPLETE.json")
    other = StagePlan.for_stage(taxi_config(pipeline_root="/local"), "Trainer", "ab" * 32)
    assert plan.cache_key != other.cache_key and plan.cache_key.startswith("trainer-")


@pytest.mark.parametrize(
    "exc, expected",
    [
        (ValueError("Columns do not match: [a] [while running 'Read/Parse']"),
         "Columns do not match: [a]"),
        (RuntimeError("Traceback (most recent call last):\n  File 'x'\nKeyError: 'rating'\n"),
         "KeyError: 'rating'"),
        (OSError("disk full"), "OSError: disk full"),
    ],
)
def test_describe_error_gives_one_readable_line(exc, expected):
    assert describe_error(exc) == expected


def test_a_stage_that_wrote_nothing_still_gets_its_marker(tmp_path):
    # e.g. a Pusher whose model is already the champion: nothing to publish, still complete.
    from tasks.shared.caching import marker_exists, write_marker

    plan = toy_plan(str(tmp_path), 7)
    output = StageOutput(stage=TOY, fingerprint=plan.fingerprint, artifacts={})
    assert not Path(plan.output_dir).exists()
    write_marker(plan, output)
    assert marker_exists(plan) and (Path(plan.output_dir) / MARKER).is_file()
