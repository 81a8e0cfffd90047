"""Run operations on SQLite and on a real PostgreSQL: rerun, edit, cancel, delete, best runs,
registered models synced from a real MLflow registry, and the cost estimate before start.

Runs are recorded as the flow records them (create, stages with their output directories,
finished status); the operations are then driven through the same API the CLI calls.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from retrain.services import catalog, estimates
from retrain.services import runs as operations
from retrain.services.errors import OperationRefused
from retrain.store import runs
from retrain.domain.stages import STAGES
from retrain.domain.status import RunStatus, StageStatus
from retrain.settings import get_settings
from retrain.store.sessions import sessions

pytestmark = [pytest.mark.service]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory) -> str:
    """One MLflow registry (SQLite) for the module: creating one costs seconds."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path, monkeypatch, mlflow_uri) -> str:
    """This process's store (RETRAIN_DATABASE_URL) on each backend, with its own root."""
    url = (f"sqlite:///{tmp_path / 'state.db'}" if request.param == "sqlite"
           else request.getfixturevalue("postgres_db"))
    monkeypatch.setenv("RETRAIN_DATABASE_URL", url)
    monkeypatch.setenv("RETRAIN_PIPELINE_ROOT", str(tmp_path / "pipelines"))
    monkeypatch.setenv("RETRAIN_MLFLOW_TRACKING_URI", mlflow_uri)
    get_settings.cache_clear()
    return url


def _config(tmp_path: Path, name: str = "ranker", **overrides) -> dict:
    """A valid ranking config on a small CSV (the file is written so estimates can count)."""
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "rows.csv").write_text("buyer_id,product_id,rating\n" + "b,p,1\n" * 600)
    from retrain.domain.examples import recommender_config

    config = recommender_config(data, "ranking").model_dump(mode="json", by_alias=True)
    config.update(model_name=name, pipeline_root=str(tmp_path / "pipelines"), **overrides)
    return config


def _record(config: dict, status: RunStatus, *, outputs: dict[str, str] | None = None,
            metrics: dict | None = None, version: str | None = None,
            flow_run_id: str | None = None, seconds: float | None = None) -> str:
    """A run as the flow leaves it: stages with output directories, then its end status."""
    with sessions().begin() as session:
        run = runs.create_run(session, config["model_name"], config,
                              model_type=(config.get("model") or {}).get("type", "user_module"),
                              flow_run_id=flow_run_id)
        if status in (RunStatus.PENDING, RunStatus.SUBMITTING):
            runs.set_status(session, run.id, status)
            return run.id
        runs.set_status(session, run.id, RunStatus.RUNNING)
        for stage, uri in (outputs or {}).items():
            Path(uri).mkdir(parents=True, exist_ok=True)
            (Path(uri) / "marker.json").write_text("{}")
            runs.record_stage(session, run.id, stage, StageStatus.COMPLETED, output_uri=uri)
        if status != RunStatus.RUNNING:
            runs.set_status(session, run.id, status, metrics=metrics, registered_version=version,
                            duration_seconds=seconds)
            if seconds is not None:
                run.duration_seconds = seconds
        return run.id


def _count_runs() -> int:
    with sessions()() as session:
        return len(runs.list_runs(session, limit=1000))


def test_rerun_keeps_the_name_takes_the_next_number_and_copies_the_config(store, tmp_path):
    config = _config(tmp_path)
    first = _record(config, RunStatus.FAILED)
    ref, rerun_config = operations.prepare_rerun(first[:8])  # a unique id prefix names it
    assert (ref.name, ref.run_number, ref.status) == ("ranker", 2, RunStatus.PENDING)
    assert ref.label == "ranker #2"
    assert rerun_config.model_dump(mode="json", by_alias=True) == config
    with sessions()() as session:
        run = runs.get_run(session, ref.id)
        assert run.source_run_id == first and run.description == "Re-run of ranker #1"
        assert [s.status for s in run.stages] == ["pending"] * len(STAGES)


def test_rerun_of_a_running_run_is_refused_and_writes_nothing(store, tmp_path):
    running = _record(_config(tmp_path), RunStatus.RUNNING)
    with pytest.raises(OperationRefused, match=r"ranker #1 is running; only a finished run"):
        operations.prepare_rerun(running)
    assert _count_runs() == 1


def test_edit_changes_only_editable_sections_and_becomes_the_template(store, tmp_path):
    config = _config(tmp_path)
    old = _record(config, RunStatus.COMPLETED)
    edited = _record(config, RunStatus.COMPLETED)
    ref, diff = operations.edit_config(edited, {"training.epochs": 9, "gpu": {"count": 2}})
    assert diff == {"training.epochs": (config["training"]["epochs"], 9),
                    "gpu.count": (config["gpu"]["count"], 2)}
    with sessions()() as session:
        run = runs.get_run(session, edited)
        assert run.config == config  # what the run ran with is kept
        assert run.edited_config["training"]["epochs"] == 9
    # Later runs of the model start from the edited run, and so does a rerun of it.
    assert operations.template_config("ranker").training.epochs == 9
    _, rerun_config = operations.prepare_rerun(edited)
    assert rerun_config.training.epochs == 9 and rerun_config.gpu.count == 2
    _, untouched = operations.prepare_rerun(old)
    assert untouched.training.epochs == config["training"]["epochs"]


def test_edit_rejects_bad_input_naming_each_problem(store, tmp_path):
    run_id = _record(_config(tmp_path), RunStatus.COMPLETED)
    with pytest.raises(ValueError, match=r"not editable: input.uri, model_name"):
        operations.edit_config(run_id, {"model_name": "x", "input.uri": "/elsewhere"})
    with pytest.raises(ValidationError) as error:
        operations.edit_config(run_id, {"training.epochs": 0, "training.learning_rate": -1})
    fields = {".".join(map(str, e["loc"])) for e in error.value.errors()}
    assert fields == {"training.epochs", "training.learning_rate"}
    with sessions()() as session:
        assert runs.get_run(session, run_id).edited_config is None  # nothing half-written
    running = _record(_config(tmp_path), RunStatus.RUNNING)
    with pytest.raises(OperationRefused, match=r"is running; edit its config once it has finished"):
        operations.edit_config(running, {"training.epochs": 3})


def test_delete_removes_what_only_it_used_and_refuses_later_operations(store, tmp_path):
    config = _config(tmp_path)
    root = tmp_path / "pipelines" / "ranker"
    shared = str(root / "ExampleGen" / "aaaa")  # a cache hit of the next run reuses it
    own = str(root / "Trainer" / "bbbb")
    doomed = _record(config, RunStatus.COMPLETED, outputs={"ExampleGen": shared, "Trainer": own})
    kept = _record(config, RunStatus.COMPLETED,
                   outputs={"ExampleGen": shared, "Trainer": str(root / "Trainer" / "cccc")})
    running = _record(config, RunStatus.RUNNING)
    with pytest.raises(OperationRefused, match=r"ranker #3 is running; cancel it before"):
        operations.delete_run(running)

    report = operations.delete_run(doomed)
    assert report.removed == [own] and report.kept_shared == [shared]
    assert not Path(own).exists() and Path(shared).exists()
    with sessions()() as session:
        assert doomed not in {r.id for r in runs.list_runs(session)}
        assert kept in {r.id for r in runs.list_runs(session)}
    for operation in (lambda: operations.edit_config(doomed, {"training.epochs": 2}),
                      lambda: operations.prepare_rerun(doomed),
                      lambda: operations.delete_run(doomed)):
        with pytest.raises(OperationRefused, match=r"ranker #1 was deleted on"):
            operation()
    # Once the other run is deleted too, the shared output goes with it.
    assert operations.delete_run(kept).removed[0] == shared
    assert not Path(shared).exists()


def _register(model_name: str, flow_run_ids: list[str], champion: int, tmp_path: Path) -> None:
    """Versions 1..n of `model_name` in the real MLflow registry, tagged as the Pusher does."""
    from retrain.adapters import mlflow_registry as registry

    client = registry.client()
    client.create_registered_model(model_name)
    source = tmp_path / "model"
    source.mkdir(exist_ok=True)
    for flow_run_id in flow_run_ids:
        client.create_model_version(model_name, source=str(source),
                                    tags={registry.FLOW_RUN_ID_TAG: flow_run_id})
    client.set_registered_model_alias(model_name, registry.CHAMPION, str(champion))


def test_models_sync_versions_champion_and_deployed_flags_from_mlflow(store, tmp_path, request):
    name = f"ranker-{request.node.callspec.id}"  # the registry is shared by the module
    config = _config(tmp_path, name=name)
    first = _record(config, RunStatus.COMPLETED, flow_run_id="00000000-0000-0000-0000-00000000000a")
    second = _record(config, RunStatus.COMPLETED, flow_run_id="00000000-0000-0000-0000-00000000000b")
    _record(config, RunStatus.NOT_BLESSED)
    _register(name, ["00000000-0000-0000-0000-00000000000a",
                     "00000000-0000-0000-0000-00000000000b"], champion=1, tmp_path=tmp_path)
    (model,) = catalog.list_models(name=name)
    assert (model.latest_version, model.champion_version, model.deployed) == ("2", "1", True)
    assert [(v.version, v.champion, v.run.id) for v in model.versions] == [
        ("1", True, first), ("2", False, second)]
    with sessions()() as session:
        assert {r.id: r.deployed for r in runs.list_runs(session, model_name=name)}[first]
        assert not {r.id: r.deployed for r in runs.list_runs(session, model_name=name)}[second]
    # The champion's run is serving: deleting it is refused; the other version can go.
    with pytest.raises(OperationRefused, match=r"version 1, the champion of .* \(serving\)"):
        operations.delete_run(first)
    report = operations.delete_run(second)
    assert f"MLflow {name} version 2" in report.removed
    (model,) = catalog.list_models(name=name)
    assert [v.version for v in model.versions] == ["1"] and model.latest_version == "1"


def test_best_runs_rank_each_model_type_by_its_key_metric(store, tmp_path):
    for recall in (0.31, 0.52, 0.47):
        _record(_config(tmp_path, name="retriever") | {"model": {"type": "retrieval"}},
                RunStatus.COMPLETED, metrics={"recall_at_100": recall})
    for rmse in (0.9, 0.7):
        _record(_config(tmp_path), RunStatus.NOT_BLESSED, metrics={"rmse": rmse})
    _record(_config(tmp_path), RunStatus.FAILED, metrics={"rmse": 0.1})  # failed: not ranked
    table = catalog.best_runs()
    assert [(e.metric, e.value) for e in table["retrieval"]] == [
        ("recall_at_100", 0.52), ("recall_at_100", 0.47), ("recall_at_100", 0.31)]
    assert [e.value for e in table["ranking"]] == [0.7, 0.9]  # lower RMSE is better
    assert set(catalog.best_runs("ranking")) == {"ranking"}


def test_cost_estimate_from_rows_then_from_the_last_finished_run(store, tmp_path):
    from retrain.domain.config import PipelineConfig

    config = PipelineConfig.model_validate(
        _config(tmp_path) | {"gpu": {"enabled": True, "count": 2, "type": "T4"}})
    from retrain.domain.costs import BEAM_DATA_ROWS_PER_S, STREAMING_DATA_ROWS_PER_S
    from retrain.domain.engine import DataEngine

    beam = config.model_copy(update={"data": config.data.model_copy(
        update={"engine": DataEngine.BEAM})})
    estimate, basis = estimates.estimate_run(config)
    assert basis == ("from 600 input rows: training at 30,000 examples/s, data stages "
                     f"(streaming) at {STREAMING_DATA_ROWS_PER_S:,.0f} rows/s")
    on_beam, beam_basis = estimates.estimate_run(beam)
    assert beam_basis.endswith(f"data stages (Beam) at {BEAM_DATA_ROWS_PER_S:,.0f} rows/s")
    assert on_beam.high_hours > estimate.high_hours  # the slower path is estimated slower
    assert estimate.gpu_count == 2 and estimate.gpu_type == "nvidia-tesla-t4"
    assert estimate.hourly_usd == pytest.approx(2 * 0.35 + 0.76)  # 2 × T4 + n1-standard-16
    _record(config.model_dump(mode="json", by_alias=True), RunStatus.COMPLETED, seconds=3600.0)
    doubled = config.model_copy(update={"training": config.training.model_copy(
        update={"epochs": config.training.epochs * 2})})
    estimate, basis = estimates.estimate_run(doubled)
    assert basis == "from ranker #1 (3600 s, scaled by epochs)"
    assert (estimate.low_hours, estimate.high_hours) == pytest.approx((1.6, 2.4))
    # a run whose data stages took the other path says nothing about this one
    assert estimates.estimate_run(beam)[1] == beam_basis
    ref = operations.create_run(doubled)  # and the pending run carries it
    with sessions()() as session:
        assert runs.get_run(session, ref.id).estimated_cost == pytest.approx(estimate.high_usd)


def test_cancel_a_run_that_never_started_and_refuse_a_finished_one(store, tmp_path):
    pending = _record(_config(tmp_path), RunStatus.PENDING)
    ref, flow_runs = operations.cancel_run(pending)
    assert ref.status == RunStatus.CANCELLED and flow_runs == []
    with sessions()() as session:
        assert {s.status for s in runs.get_run(session, pending).stages} == {"skipped"}
    with pytest.raises(OperationRefused, match=r"has already ended \(cancelled\)"):
        operations.cancel_run(pending)


def _cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], capture_output=True,
                          text=True, env={**os.environ, **env}, cwd=REPO, timeout=120)


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_cli_exit_codes_follow_the_outcome(store, tmp_path):
    env = {"RETRAIN_DATABASE_URL": store, "RETRAIN_PIPELINE_ROOT": str(tmp_path / "pipelines")}
    bad = tmp_path / "bad.yaml"
    bad.write_text("model_name: Not A Name\ninput: {format: csv}\ntraining: {epochs: 0}\n")
    result = _cli("runs", "start", str(bad), env=env)
    assert result.returncode == 2, result.stderr
    assert "invalid config" in result.stderr
    assert "3 problem(s)" in result.stderr
    assert "  model_name: model_name 'Not A Name' must be" in result.stderr
    assert "  input: input.uri is required for input.format 'csv'" in result.stderr
    assert "  training.epochs: Input should be greater than or equal to 1" in result.stderr
    assert _count_runs() == 0  # nothing recorded for an invalid config
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "rows.csv").write_text("buyer_id,product_id,rating\n")  # a header, no rows
    header_only = tmp_path / "header-only.json"
    header_only.write_text(json.dumps(_config(tmp_path, input={
        "uri": str(empty), "format": "csv", "pattern": "*.csv"})))
    for command in ("estimate", "start"):
        result = _cli("runs", command, str(header_only), env=env)
        assert result.returncode == 2, result.stderr
        # ExampleGen's own words, one line, no traceback
        assert result.stderr == "input data is empty: 1 csv file(s) with no rows\n"
    assert _count_runs() == 0
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    result = _cli("runs", "start", str(broken), env=env)
    assert result.returncode == 2 and "is not valid JSON" in result.stderr

    running = _record(_config(tmp_path), RunStatus.RUNNING)
    result = _cli("runs", "rerun", running, env=env)
    assert result.returncode == 4 and "refused: run ranker #1 is running" in result.stderr
    result = _cli("runs", "edit", running, "--set", "training.epochs=3", env=env)
    assert result.returncode == 4
    assert _cli("runs", "cancel", "0123456789", env=env).returncode == 2
    result = _cli("runs", "data", running, env=env)
    assert result.returncode == 2
    assert "run ranker #1 has no statistics: StatisticsGen is pending" in result.stderr
    done = _record(_config(tmp_path), RunStatus.COMPLETED)
    result = _cli("runs", "edit", done, "--set", "training.epochs=7", env=env)
    assert result.returncode == 0 and "training.epochs: 3 -> 7" in result.stdout
    assert _cli("runs", "delete", done, env=env).returncode == 2  # needs --yes
    assert _cli("runs", "delete", done, "--yes", env=env).returncode == 0
    result = _cli("runs", "edit", done, "--set", "training.epochs=3", env=env)
    assert result.returncode == 4 and "was deleted on" in result.stderr


def test_cancel_reaches_the_prefect_flow_run_and_the_flow_runs_it_started(
        store, tmp_path, prefect_harness):
    from prefect import flow, task
    from prefect.client.orchestration import get_client
    from prefect.states import Completed, Running, Scheduled

    @flow(name="cancel-probe")
    def probe() -> None:
        """Never run: only its flow runs are created."""

    @task(name="start-child")
    def start_child() -> None:
        """Never run: the parent's task that started the child flow runs."""

    with get_client(sync_client=True) as client:
        parent = client.create_flow_run(probe, state=Running())
        # Flow runs started by one of the parent's tasks (as run_deployment does).
        task_run = client.create_task_run(task=start_child, flow_run_id=parent.id,
                                          dynamic_key="0")
        child = client.create_flow_run(probe, state=Scheduled(), parent_task_run_id=task_run.id)
        finished = client.create_flow_run(probe, state=Running(),
                                           parent_task_run_id=task_run.id)
        client.set_flow_run_state(finished.id, Completed(), force=True)
    run_id = _record(_config(tmp_path), RunStatus.SUBMITTING, flow_run_id=str(parent.id))

    ref, cancelled = operations.cancel_run(run_id)
    assert ref.status == RunStatus.CANCELLED
    assert set(cancelled) == {str(parent.id), str(child.id)}  # not the finished one
    with get_client(sync_client=True) as client:
        # Running: Cancelling, so the worker stops its process; not started: Cancelled.
        assert client.read_flow_run(parent.id).state.type.value == "CANCELLING"
        assert client.read_flow_run(child.id).state.is_cancelled()
        assert client.read_flow_run(finished.id).state.is_completed()


def test_a_run_that_cannot_be_submitted_is_failed_with_the_reason(store, tmp_path,
                                                                    prefect_harness):
    from retrain.domain.config import PipelineConfig

    config = PipelineConfig.model_validate(_config(tmp_path))
    with pytest.raises(LookupError, match=r"no Prefect deployment named 'training-pipeline/nope'"):
        operations.start_run(config, deployment="training-pipeline/nope")
    with sessions()() as session:
        (run,) = runs.list_runs(session)
        assert run.status == "failed" and run.flow_run_id is None
        assert run.error_message == "no Prefect deployment named 'training-pipeline/nope'"
