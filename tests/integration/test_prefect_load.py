"""Production Prefect under load: a real `prefect server start` backed by the suite's own
PostgreSQL, a process worker, a state store on PostgreSQL, and triggers from many processes
at once. Nothing is lost: every trigger exits 0, every flow run gets one record with a
unique run number, the schedule's statistics count them all, the overlap policy `skip`
records the extra runs skipped with the reason, and a worker killed mid-run (with the
flow-run processes it started) leaves every run in a final, recorded state once
reconciliation has run.

The same 20-trigger case on Prefect's SQLite server is in test_prefect_load_sqlite.py.
Every run hits the stage cache after a first warm-up run, so the load is Prefect's and the
store's, not training's.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from prefect_services import (
    QUEUE_RETRY,
    deploy_entrypoint,
    ensure_process_pool,
    flow_run_process,
    local_job_variables,
    prefect_client,
    prefect_server,
    process_environment,
    process_worker,
    production_env,
    server_errors,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.service]
TRIGGERS = 50
REPO = Path(__file__).resolve().parents[2]
BASE = "training-pipeline/base"
TRAINING_LIMIT = 4  # prefect.yaml's training_limit
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
MODEL = "load"  # one model for every case: one warm-up, then every stage is cached
# With a command set, Prefect's process worker starts the engine alone, not a workspace
# supervisor first: one Python start (and Prefect import) per flow run instead of two.
ONE_PROCESS = {"command": f"{sys.executable} -m prefect.engine"}
OUTCOMES = {"Completed", "NotBlessed"}
SUCCESSFUL = {"completed", "not_blessed"}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, tiny_interactions, postgres_url):
    """Prefect server on PostgreSQL + worker + base deployment; the store on PostgreSQL."""
    from postgres_server import create_database

    home = tmp_path_factory.mktemp("load")
    suffix = uuid.uuid4().hex[:8]
    store_url = create_database(postgres_url, f"load_store_{suffix}")
    prefect_db = create_database(postgres_url, f"load_prefect_{suffix}")
    env = {
        "RETRAIN_HOME": str(home / "retrain"),
        "RETRAIN_DATABASE_URL": store_url,
        "RETRAIN_SCHEDULE_BASE_DEPLOYMENT": BASE,
        "RETRAIN_HEARTBEAT_SECONDS": "3",
        "RETRAIN_HEARTBEAT_TIMEOUT_SECONDS": "30",
        "RETRAIN_PENDING_TIMEOUT_SECONDS": "45",
        "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(home / "results"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        # The production set-up's worker and flow-run settings (client retries).
        **production_env(),
    }
    pool = f"load-{uuid.uuid4().hex[:6]}"
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with process_environment(env), \
            prefect_server(home / "server", QUEUE_RETRY,
                           database_url=prefect_db) as api_url, \
            temporary_settings({PREFECT_API_URL: api_url}):
        ensure_process_pool(api_url, pool)
        deploy_entrypoint(api_url, "flows/training_pipeline.py:training_pipeline", "base",
                          pool, REPO, concurrency_limit=TRAINING_LIMIT,
                          job_variables=local_job_variables(**ONE_PROCESS))
        yield {"api_url": api_url, "home": home, "env": env, "pool": pool,
               "data": tiny_interactions}


def _schedule(loaded, model: str, overlap: str):
    """A weekly schedule far from now for `model` with this overlap policy, replacing the
    model's previous one (its runs stay; its stage cache stays warm: `overlap` is in no
    stage's fingerprint). The template is a pending run record made once per model."""
    from retrain.domain.examples import recommender_config
    from retrain.domain.overlap import OverlapPolicy
    from retrain.domain.schedule.spec import ScheduleSpec
    from retrain.services import runs as operations
    from retrain.services import schedules as scheduling

    templates = loaded.setdefault("templates", {})
    if model not in templates:
        home = loaded["home"]
        config = recommender_config(
            loaded["data"], "ranking", model_name=model, pipeline_root=str(home / "pipelines"),
            pusher={"serving_base": str(home / "serving")}, training={"epochs": 1},
            beam={"args": ["--direct_running_mode=in_memory"]})
        templates[model] = operations.create_run(config).id
    if any(view.model_name == model for view in scheduling.list_schedules()):
        scheduling.delete_schedule(model)
    weekday = (dt.datetime.now(dt.timezone.utc).weekday() + 3) % 7
    view = scheduling.create_schedule(ScheduleSpec(type="weekly", day_of_week=weekday,
                                                   time="03:00"), run_ref=templates[model],
                                      overlap=OverlapPolicy(overlap))
    assert view.overlap is OverlapPolicy(overlap)  # frozen into the schedule's config
    return view


def _trigger_all(loaded, model: str, count: int) -> list[subprocess.CompletedProcess]:
    """`retrain schedules trigger MODEL` from `count` processes started together."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(loaded["env"], PREFECT_API_URL=loaded["api_url"])
    procs = [subprocess.Popen([sys.executable, "-m", "flows.cli", "schedules", "trigger", model],
                              cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(count)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=1200)  # SQLite: up to ~10 min of retries
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return results


def _failures(loaded, results) -> str:
    """What the failed triggers printed, and what the server logged meanwhile."""
    printed = [r.stderr.strip()[-600:] for r in results if r.returncode]
    return "\n".join(printed) + "\n--- server errors ---\n" + server_errors(loaded["home"] / "server")


def _flow_runs(loaded, view):
    """The schedule's triggered flow runs (not the scheduler's runs for its weekly slots)."""
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterTags,
    )

    with prefect_client(loaded["api_url"]) as client:
        deployment = client.read_deployment_by_name(view.deployment)
        return client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=["trigger-now"])),
            limit=200)


def _all_final(loaded, view, count: int):
    """The flow runs, once all `count` are final and their records say so too: a flow run's
    state turns final before its completion hook writes the record, and leaving the
    worker's block then would kill that hook halfway."""
    runs = _flow_runs(loaded, view)
    if len(runs) != count or not all(r.state_type.value in FINAL for r in runs):
        return False
    unfinished = [r for r in _records(view.model_name, runs)
                  if r["status"] in ("pending", "scheduled", "submitting", "running")]
    return not unfinished and runs


def _records(model: str, flow_runs=None):
    """The model's records of flow runs (of these flow runs, if given)."""
    from retrain.store import runs
    from retrain.store.sessions import sessions

    ids = {str(r.id) for r in flow_runs} if flow_runs is not None else None
    with sessions()() as session:
        found = [r for r in runs.list_runs(session, model_name=model, limit=500)
                 if r.flow_run_id is not None and (ids is None or r.flow_run_id in ids)]
        return [{"number": r.run_number, "status": r.status.value, "flow_run": r.flow_run_id,
                 "stage": r.error_stage.value if r.error_stage else None,
                 "message": r.error_message, "admitted": r.admitted_at,
                 "finished": r.finished_at} for r in found]


def _warm_up(loaded, view, model: str) -> int:
    """One run first (once per model), so the load runs hit every stage's cache; returns how
    many runs that added to this schedule (1, or 0 when the model was warm already)."""
    from retrain.services.schedules import trigger_schedule

    warm = loaded.setdefault("warm", set())
    if model in warm:
        return 0
    trigger_schedule(model)
    wait_for(lambda: _all_final(loaded, view, 1), 600, interval=2,
             what="the warm-up run to finish")
    warm.add(model)
    return 1


def test_triggers_from_many_processes_at_once_all_run_and_are_recorded(loaded):
    from retrain.services.schedules import get_schedule

    view = _schedule(loaded, MODEL, "allow")
    with process_worker(loaded["api_url"], loaded["pool"], loaded["home"] / "worker-a",
                        loaded["env"], cwd=REPO):
        warm = _warm_up(loaded, view, MODEL)
        results = _trigger_all(loaded, MODEL, TRIGGERS)
        assert [r.returncode for r in results] == [0] * TRIGGERS, _failures(loaded, results)
        assert all(r.stdout.startswith("started flow run ") for r in results)
        done = wait_for(lambda: _all_final(loaded, view, warm + TRIGGERS), 2400, interval=3,
                        what="every flow run to finish")
    # Tiny data: each run is blessed or not by the same rule, both are successful outcomes.
    assert {r.state_name for r in done} <= OUTCOMES
    records = _records(MODEL, done)
    assert len(records) == warm + TRIGGERS and {r["flow_run"] for r in records} == {str(r.id) for r in done}
    # One run number each, no gaps, no repeats.
    numbers = sorted(r["number"] for r in records)
    assert numbers == list(range(numbers[0], numbers[0] + warm + TRIGGERS))
    assert {r["status"] for r in records} <= SUCCESSFUL
    stats = get_schedule(MODEL)
    assert (stats.total_runs, stats.successful_runs, stats.failed_runs) == (warm + TRIGGERS,) * 2 + (0,)


def test_skip_records_the_extra_runs_skipped_with_the_run_they_gave_way_to(loaded):
    view = _schedule(loaded, MODEL, "skip")
    with process_worker(loaded["api_url"], loaded["pool"], loaded["home"] / "worker-b",
                        loaded["env"], cwd=REPO):
        warm = _warm_up(loaded, view, MODEL)
        results = _trigger_all(loaded, MODEL, 8)
        assert [r.returncode for r in results] == [0] * 8, _failures(loaded, results)
        done = wait_for(lambda: _all_final(loaded, view, warm + 8), 900, interval=3,
                        what="every flow run to finish")
    records = {r["number"]: r for r in _records(MODEL, done)}
    assert len(records) == warm + 8
    skipped = [r for r in records.values() if r["status"] == "skipped"]
    completed = [r for r in records.values() if r["status"] in SUCCESSFUL]
    assert skipped and len(skipped) + len(completed) == warm + 8
    assert {r.state_name for r in done} <= OUTCOMES | {"Skipped"}
    for run in skipped:
        assert run["message"].startswith("skipped by the overlap policy 'skip': run #")
        assert run["stage"] is None
        winner = records[int(run["message"].split("#")[1].split()[0])]
        assert winner["status"] in SUCCESSFUL
    # No two runs of the model ever trained at once.
    spans = sorted((r["admitted"], r["finished"]) for r in completed)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))


def test_a_killed_worker_leaves_every_run_final_and_recorded(loaded):
    from retrain.services.reconcile import reconcile
    from retrain.services.schedules import get_schedule

    view = _schedule(loaded, MODEL, "allow")
    with process_worker(loaded["api_url"], loaded["pool"], loaded["home"] / "worker-c",
                        loaded["env"], cwd=REPO) as worker:
        warm = _warm_up(loaded, view, MODEL)
        results = _trigger_all(loaded, MODEL, 6)
        assert [r.returncode for r in results] == [0] * 6, _failures(loaded, results)

        def running():
            found = [r for r in _flow_runs(loaded, view) if r.state_type.value == "RUNNING"]
            return len(found) >= 2 and found
        victims = wait_for(running, 300, interval=0.5, what="two runs running")
        # The machine is lost: the worker and every flow-run process it started die at once.
        processes = [flow_run_process(r.id) for r in _flow_runs(loaded, view)]
        os.killpg(worker.pid, signal.SIGKILL)
        for proc in processes:
            if proc is not None:
                proc.kill()
    killed = {str(r.id) for r in victims}
    # Reconciliation (no automation is set up here) ends the silent runs crashed; a second
    # worker then runs what was still waiting. Runs the dead worker left Pending are
    # crashed once RETRAIN_PENDING_TIMEOUT_SECONDS passes.
    with process_worker(loaded["api_url"], loaded["pool"], loaded["home"] / "worker-d",
                        loaded["env"], cwd=REPO):
        def settled():
            reconcile()
            return _all_final(loaded, view, warm + 6)
        done = wait_for(settled, 600, interval=5, what="every run final after the kill")
    records = {r["flow_run"]: r for r in _records(MODEL, done)}
    assert set(records) == {str(r.id) for r in done}
    assert all(r["status"] in SUCCESSFUL | {"crashed"} for r in records.values())
    for flow_run_id in killed:
        record = records[flow_run_id]
        assert record["status"] == "crashed", record
        # Its heartbeat stopped, or it died between Running and opening its record.
        assert ("no heartbeat from the process running flow run" in record["message"]
                or "died before it could record the run" in record["message"]), record
    state_of = {str(r.id): r.state_type.value for r in done}
    assert all(state_of[f] == ("COMPLETED" if r["status"] in SUCCESSFUL else "CRASHED")
               for f, r in records.items())
    stats = get_schedule(MODEL)
    crashed = sum(r["status"] == "crashed" for r in records.values())
    assert (stats.total_runs, stats.failed_runs) == (warm + 6, crashed)
