"""The embedded default under the load that broke it: 20 `retrain schedules trigger` processes
at once against Prefect's SQLite server with a worker running flows (on main at 6046801, 8
of 20 failed with a raw traceback after HTTP 503 "database is locked").

Each trigger now either passes through the retries (exit 0) or fails with one line naming
the server and the error (exit 5) and creates nothing. A few of the runs go through the
worker under that load; the rest are cancelled while still waiting, and reconciliation gives
each of those a record too. The README says how the triggers fared on these machines.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from prefect_services import (
    QUEUE_RETRY,
    deploy_entrypoint,
    ensure_process_pool,
    local_job_variables,
    prefect_server,
    process_environment,
    process_worker,
    server_errors,
    wait_for,
)
from test_prefect_load import (
    BASE,
    ONE_PROCESS,
    TRAINING_LIMIT,
    _all_final,
    _flow_runs,
    _records,
    _schedule,
    _trigger_all,
    _warm_up,
)

pytestmark = [pytest.mark.slow, pytest.mark.service]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def embedded(tmp_path_factory, tiny_interactions):
    """Prefect's SQLite server + worker; the store on SQLite: the embedded default."""
    home = tmp_path_factory.mktemp("load-sqlite")
    env = {
        "RETRAIN_HOME": str(home / "retrain"),
        "RETRAIN_DATABASE_URL": f"sqlite:///{home / 'state.db'}",
        "RETRAIN_SCHEDULE_BASE_DEPLOYMENT": BASE,
        "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(home / "results"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    pool = f"sqlite-{uuid.uuid4().hex[:6]}"
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with process_environment(env), prefect_server(home / "server", QUEUE_RETRY) as api_url, \
            temporary_settings({PREFECT_API_URL: api_url}):
        ensure_process_pool(api_url, pool)
        deploy_entrypoint(api_url, "flows/training_pipeline.py:training_pipeline", "base",
                          pool, REPO, concurrency_limit=TRAINING_LIMIT,
                          job_variables=local_job_variables(**ONE_PROCESS))
        yield {"api_url": api_url, "home": home, "env": env, "pool": pool,
               "data": tiny_interactions}


def _cancel_waiting(embedded, view) -> set[str]:
    """Cancel the schedule's flow runs that are still Scheduled; returns their ids."""
    from prefect.states import Cancelled

    from prefect_services import prefect_client

    waiting = {str(r.id) for r in _flow_runs(embedded, view) if r.state_type.value == "SCHEDULED"}
    with prefect_client(embedded["api_url"]) as client:
        for flow_run_id in waiting:
            client.set_flow_run_state(flow_run_id, Cancelled(message="cleared by the operator"),
                                      force=True)
    return waiting


def _worker_errors(embedded) -> str:
    """The worker log's error lines (flow-run output included): for a run that did not end
    well, what its engine said."""
    log = embedded["home"] / "worker" / "worker.log"
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    return "\n".join(line[:300] for line in lines
                     if "rror" in line or "rash" in line or "xception" in line)[-6000:]


def test_twenty_triggers_pass_through_the_retries_or_fail_in_one_line(embedded):
    from retrain.services.reconcile import reconcile

    view = _schedule(embedded, "sqlite-load", "allow")
    # The worker retries as its flow runs do (deployments/README.md, the local process pool):
    # on Prefect's default 5 (about a minute of back-off), a worker whose request on a flow run
    # met "database is locked" for longer gave up, and it ends a run it fails to submit Crashed.
    worker_env = {**embedded["env"], **local_job_variables()["env"]}
    with process_worker(embedded["api_url"], embedded["pool"], embedded["home"] / "worker",
                        worker_env, cwd=REPO):
        _warm_up(embedded, view, "sqlite-load")
        results = _trigger_all(embedded, "sqlite-load", 20)
        started = [r for r in results if r.returncode == 0]
        for result in results:
            if result.returncode == 0:
                assert result.stdout.startswith("started flow run ")
            else:
                assert result.returncode == 5, result.stderr
                line = result.stderr.strip()
                assert "\n" not in line and "Traceback" not in result.stderr
                assert line.startswith(f"unavailable: Prefect API at {embedded['api_url']}")
        assert len(_flow_runs(embedded, view)) == 1 + len(started)  # a failed one made none
        # A few runs go through the worker under the same load; then an operator cancels the
        # rest while they still wait (Scheduled): those never ran, so never had a record.
        wait_for(lambda: sum(r.state_type.value == "COMPLETED"
                             for r in _flow_runs(embedded, view)) >= 4,
                 900, interval=3, what="four runs to complete")
        waiting = _cancel_waiting(embedded, view)
        done = wait_for(lambda: _all_final(embedded, view, 1 + len(started)), 900,
                        interval=3, what="every created flow run to end")
    # A run the worker took between the listing and the cancel started, and recorded itself
    # and its cancellation; the others never ran, and reconciliation gives them their record.
    never_started = {str(r.id) for r in done if str(r.id) in waiting and r.start_time is None}
    reconciled = reconcile()
    assert {item.flow_run_id for item in reconciled if item.created} >= never_started
    records = _records("sqlite-load")
    assert {r["flow_run"] for r in records} == {str(r.id) for r in done}
    for record in records:
        if record["flow_run"] in waiting:
            assert record["status"] == "cancelled" and record["stage"] is None
        else:
            assert record["status"] in {"completed", "not_blessed"}, (
                record, server_errors(embedded["home"] / "server"), _worker_errors(embedded))
    print(f"SQLite embedded default: {len(started)} of 20 triggers started a run; flow runs "
          f"{sorted(r.state_name for r in done)}")
