"""Runs on a real Prefect server and process worker: a flow killed mid-stage is recorded as
crashed at that stage and its rerun resumes from the cached stages; a cancelled run stops.

The training flow is deployed from this checkout; the worker runs it as a subprocess with
the test's state store, pipeline root and Prefect result storage (the stage cache), so the
test process, the worker's flow runs and `retrain` on the command line share one record.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from prefect_services import (
    deploy_entrypoint,
    flow_run_process,
    prefect_client,
    process_environment,
    process_worker,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.service]
REPO = Path(__file__).resolve().parents[2]
DEPLOYMENT = "training-pipeline/lifecycle"


@pytest.fixture(scope="module")
def lifecycle(prefect_server, tiny_interactions, tmp_path_factory, session_dir):
    """A worker serving the training flow; the store, roots and result storage it uses."""
    home = tmp_path_factory.mktemp("lifecycle")
    env = {
        "RETRAIN_HOME": str(home / "retrain"),
        "RETRAIN_DATABASE_URL": f"sqlite:///{home / 'state.db'}",
        # The stage cache lives in Prefect's result storage: one place for every process.
        "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(home / "results"),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    pool = f"lifecycle-{uuid.uuid4().hex[:6]}"
    with process_environment(env), \
            process_worker(prefect_server, pool, home / "worker", env, cwd=REPO):
        deploy_entrypoint(prefect_server, "flows/training_pipeline.py:training_pipeline",
                          "lifecycle", pool, REPO)
        yield {"api_url": prefect_server, "home": home, "env": env, "data": tiny_interactions}


def _config(data: Path, home: Path, name: str):
    from retrain.domain.examples import recommender_config

    return recommender_config(
        data, "retrieval", model_name=name,
        pipeline_root=str(home / "pipelines"),
        pusher={"serving_base": str(home / "serving")},
        training={"epochs": 3},
        beam={"args": ["--direct_running_mode=in_memory"]},
    )


def _run(run_id: str):
    from retrain.store import runs
    from retrain.store.sessions import sessions

    with sessions()() as session:
        return runs.get_run(session, run_id)


def _stage_statuses(run_id: str) -> list[str]:
    from retrain.store import runs
    from retrain.store.sessions import sessions

    with sessions()() as session:
        return [stage.status for stage in runs.get_run(session, run_id).stages]


def _start(lifecycle, name: str):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from retrain.services import runs as operations

    with temporary_settings({PREFECT_API_URL: lifecycle["api_url"]}):
        return operations.start_run(_config(lifecycle["data"], lifecycle["home"], name),
                                    deployment=DEPLOYMENT)


def _kill_when_trainer_runs(ref) -> None:
    wait_for(lambda: _stage_statuses(ref.id)[5] == "running", timeout=300, interval=0.2,
             what="the Trainer stage to start")
    process = wait_for(lambda: flow_run_process(ref.flow_run_id), timeout=30,
                       what="the flow run's process")
    process.kill()  # SIGKILL: no Python handler, no hook in that process runs


def _cli(lifecycle, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **lifecycle["env"], "PREFECT_API_URL": lifecycle["api_url"]}
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=600)


def test_killed_run_is_crashed_at_its_stage_and_its_rerun_resumes_from_cache(lifecycle):
    from retrain.store.orm import TrainingMetricsHistory, TrainingRun, TrainingStage
    from retrain.store.sessions import sessions

    ref = _start(lifecycle, "crash-probe")
    assert ref.status.value == "submitting" and ref.flow_run_id
    _kill_when_trainer_runs(ref)

    crashed = wait_for(lambda: _run(ref.id).status == "crashed" and _run(ref.id), timeout=120,
                       what="the run record to say crashed")
    assert crashed.error_stage == "Trainer"
    assert "exited with status code: -9" in crashed.error_message  # the worker says why
    assert _stage_statuses(ref.id) == ["completed"] * 5 + ["failed", "skipped", "skipped"]
    with prefect_client(lifecycle["api_url"]) as client:
        assert client.read_flow_run(ref.flow_run_id).state.is_crashed()

    # The rerun, from the command line in this process: unchanged stages come from the cache.
    result = _cli(lifecycle, "runs", "rerun", ref.id)
    assert result.returncode == 0, result.stdout + result.stderr
    # Done either way: tiny data trains a model no better than the most popular products,
    # so the blessing's trivial-baseline rule may refuse it (not blessed is a finished run).
    assert re.search(r"crash-probe #2 \(.*\) is (completed|not_blessed);", result.stdout), \
        result.stdout
    with sessions()() as session:
        rerun = session.execute(select(TrainingRun).where(TrainingRun.run_number == 2)).scalar_one()
        assert rerun.name == "crash-probe" and rerun.source_run_id == ref.id
        assert [s.status for s in rerun.stages] == ["cached"] * 5 + ["completed"] * 3
        # Cached stages point at the outputs the crashed run wrote: nothing was redone.
        crashed = session.get(TrainingRun, ref.id)
        first = {s.stage: s.output_uri for s in crashed.stages}
        assert all(s.output_uri == first[s.stage] for s in rerun.stages[:5])
        assert [e.epoch for e in rerun.epochs] == [1, 2, 3] and rerun.total_epochs == 3
        # No row lost or duplicated: two runs, eight stages each, epochs only where trained.
        assert session.scalar(select(func.count()).select_from(TrainingRun)) == 2
        assert session.scalar(select(func.count()).select_from(TrainingStage)) == 16
        assert session.scalar(select(func.count()).select_from(TrainingMetricsHistory)) == (
            3 + len(crashed.epochs))

    shown = _cli(lifecycle, "runs", "show", rerun.id)
    assert shown.returncode == 0, shown.stderr
    png = Path(lifecycle["home"]) / "pipelines" / "crash-probe" / "runs" / "2" / "training_curve.png"
    assert f"curve    {png}" in shown.stdout and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "losses by epoch" in shown.stdout and "val_recall_at_100" in shown.stdout

    # Data insights of the rerun come from the statistics its cached StatisticsGen points at.
    data = _cli(lifecycle, "runs", "data", rerun.id)
    assert data.returncode == 0, data.stderr
    assert "buyer_id" in data.stdout and "statistics_report.html" in data.stdout
    assert str(first["StatisticsGen"]) in data.stdout


def test_cancelled_run_stops_and_is_recorded_cancelled_at_its_stage(lifecycle):
    from retrain.services import runs as operations
    from prefect.settings import PREFECT_API_URL, temporary_settings

    ref = _start(lifecycle, "cancel-probe")
    # Transform: on tiny data the streaming StatisticsGen ends within a second, too soon
    # to cancel inside it reliably; Transform's analysis takes several
    wait_for(lambda: _stage_statuses(ref.id)[4] == "running", timeout=300, interval=0.2,
             what="the Transform stage to start")
    process = flow_run_process(ref.flow_run_id)
    with temporary_settings({PREFECT_API_URL: lifecycle["api_url"]}):
        cancelled, flow_runs = operations.cancel_run(ref.id)
    assert cancelled.status.value == "cancelled" and flow_runs == [ref.flow_run_id]
    with prefect_client(lifecycle["api_url"]) as client:
        wait_for(lambda: client.read_flow_run(ref.flow_run_id).state.is_cancelled(), timeout=120,
                 what="Prefect to report the flow run cancelled")
    if process is not None:  # the worker stopped the flow's process
        wait_for(lambda: not process.is_running() or process.status() == "zombie", timeout=60,
                 what="the flow run's process to exit")
    run = _run(ref.id)
    assert run.status == "cancelled" and run.error_stage == "Transform"
    assert _stage_statuses(ref.id) == ["completed"] * 4 + ["failed"] + ["skipped"] * 3
    result = _cli(lifecycle, "runs", "cancel", ref.id)
    assert result.returncode == 4 and "already ended (cancelled)" in result.stderr
