"""The real Prefect server + process worker that crash, cancel and schedule tests rely on:
a deployment run goes through the worker to Completed, a killed flow-run process ends
Crashed with its on_crashed hook run, and a cancelled run is stopped by the worker and ends
Cancelled with its on_cancellation hook run."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import psutil
import pytest
from prefect.client.schemas.objects import State, StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.states import Cancelling
from prefect_services import (
    deploy_entrypoint,
    flow_run_process,
    prefect_client,
    process_worker,
    wait_for,
)

pytestmark = [pytest.mark.service]

FLOWS_DIR = Path(__file__).parents[1] / "testdata" / "flows"
POOL = "test-prefect-server-worker"
# Engine start-up on a 2-core machine takes ~15 s; these leave room for a loaded CI box.
START_TIMEOUT_S = 90
END_TIMEOUT_S = 60
# Long enough that the run is surely still going when the test interferes.
BUSY_SECONDS = 300


@pytest.fixture(scope="module")
def worker(prefect_server: str, session_dir: Path) -> Iterator[subprocess.Popen]:
    """A process worker polling this module's own work pool."""
    home = session_dir / f"prefect-worker-{POOL}"
    with process_worker(prefect_server, POOL, home, env={}, cwd=FLOWS_DIR) as proc:
        yield proc


@pytest.fixture(scope="module")
def probe_deployment(prefect_server: str, worker: subprocess.Popen) -> UUID:
    """The probe flow deployed on this module's pool."""
    return deploy_entrypoint(prefect_server, "probe.py:probe", "smoke", POOL, FLOWS_DIR)


def _start_probe(api_url: str, deployment_id: UUID, seconds: float, marker_dir: Path) -> UUID:
    with prefect_client(api_url) as client:
        run = client.create_flow_run_from_deployment(
            deployment_id, parameters={"seconds": seconds, "marker_dir": str(marker_dir)}
        )
    return run.id


def _final_state(api_url: str, flow_run_id: UUID) -> State | None:
    """The run's state once final, else None."""
    with prefect_client(api_url) as client:
        state = client.read_flow_run(flow_run_id).state
    return state if state is not None and state.is_final() else None


def _wait_started(marker_dir: Path, flow_run_id: UUID) -> psutil.Process:
    """Wait for the flow body to begin; return the process running it."""
    wait_for(
        (marker_dir / f"{flow_run_id}.started").exists,
        START_TIMEOUT_S,
        what=f"flow run {flow_run_id} to start",
    )
    proc = flow_run_process(flow_run_id)
    assert proc is not None, f"no process runs flow run {flow_run_id}"
    return proc


def _exited(proc: psutil.Process) -> bool:
    """Whether `proc` is gone (a zombie awaiting its parent counts as gone)."""
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_deployment_run_reaches_completed(prefect_server, probe_deployment, tmp_path):
    run_id = _start_probe(prefect_server, probe_deployment, 0, tmp_path)

    state = wait_for(
        lambda: _final_state(prefect_server, run_id),
        START_TIMEOUT_S + END_TIMEOUT_S,
        what=f"flow run {run_id} to finish",
    )

    assert state.is_completed(), f"{state.name}: {state.message}"
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{run_id}.started"]


def test_killed_flow_run_process_ends_crashed_and_runs_on_crashed(
    prefect_server, probe_deployment, tmp_path
):
    run_id = _start_probe(prefect_server, probe_deployment, BUSY_SECONDS, tmp_path)
    proc = _wait_started(tmp_path, run_id)

    proc.kill()

    state = wait_for(
        lambda: _final_state(prefect_server, run_id), END_TIMEOUT_S, what="a final state"
    )
    assert state.is_crashed(), f"{state.name}: {state.message}"
    assert "SIGKILL" in state.message
    crashed = tmp_path / f"{run_id}.crashed"
    # The worker reports Crashed first, then runs the hook in a fresh process.
    wait_for(crashed.exists, END_TIMEOUT_S, what="the on_crashed hook's marker")
    assert crashed.read_text() == state.message
    assert not (tmp_path / f"{run_id}.cancelled").exists()


def test_cancelled_flow_run_is_stopped_and_runs_on_cancellation(
    prefect_server, probe_deployment, tmp_path
):
    run_id = _start_probe(prefect_server, probe_deployment, BUSY_SECONDS, tmp_path)
    proc = _wait_started(tmp_path, run_id)

    # What `prefect flow-run cancel` and the UI do.
    with prefect_client(prefect_server) as client:
        result = client.set_flow_run_state(run_id, Cancelling())
    assert result.status == SetStateStatus.ACCEPT, result.details

    state = wait_for(
        lambda: _final_state(prefect_server, run_id), END_TIMEOUT_S, what="a final state"
    )
    assert state.type == StateType.CANCELLED, f"{state.name}: {state.message}"
    wait_for(lambda: _exited(proc), END_TIMEOUT_S, what=f"process {proc.pid} to exit")
    # The worker kills the process, runs the hook, then reports Cancelled.
    assert (tmp_path / f"{run_id}.cancelled").exists()
    assert not (tmp_path / f"{run_id}.crashed").exists()
