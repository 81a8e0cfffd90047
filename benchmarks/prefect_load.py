"""Prefect under load: N `retrain schedules trigger` processes at once, SQLite vs PostgreSQL.

For each backend of Prefect's server (its embedded SQLite database, or PostgreSQL through
asyncpg: the production set-up) this starts `prefect server start`, a process worker, the
training deployment with prefect.yaml's concurrency limit (4) and a schedule of a ranking
model on tiny data, runs one warm-up run (so every later run hits the stage cache), then
starts N trigger processes together. The state store is on the same backend kind. It prints,
side by side:

- triggers that exited 0, and those that failed (with the first line they printed);
- triggers/s: N over the wall time until the last trigger process exited;
- time from trigger to Running (flow run created → its start), p50 and p95;
- wall time until every flow run was final, how many runs their own hooks recorded, and how
  many have a record after one reconciliation (`retrain runs reconcile`).

The PostgreSQL server is started like the test suite's (tests/postgres_server.py); the
Prefect server and worker helpers are the suite's too (tests/integration/prefect_services.py).

```bash
.venv/bin/python benchmarks/prefect_load.py                 # 50 triggers, sqlite and postgresql
.venv/bin/python benchmarks/prefect_load.py --triggers 20 --backends sqlite
```
Exits 0 when every backend ran to the end (failed triggers are figures, not errors).
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "tests" / "integration")]
LIMIT = 4  # prefect.yaml's training_limit
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def percentile(values: list[float], share: float) -> float:
    """The `share` quantile (nearest rank) of `values`; nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def _flow_runs(api_url: str, deployment_name: str) -> list:
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterTags,
    )

    from prefect_services import prefect_client

    with prefect_client(api_url) as client:  # triggered runs, not the weekly slots' runs
        deployment = client.read_deployment_by_name(deployment_name)
        return client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=["trigger-now"])),
            limit=200)


def _wait_final(api_url: str, deployment_name: str, count: int, timeout: float) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = _flow_runs(api_url, deployment_name)
        if len(runs) >= count and all(r.state_type.value in FINAL for r in runs):
            return runs
        time.sleep(3)
    raise TimeoutError(f"flow runs of {deployment_name} not final after {timeout:.0f} s")


# A trigger still retrying after this long is stopped and counted as failed (SQLite: each of
# its 8 tries may wait for Prefect's 60 s request timeout, after 50 Python starts on 2 cores).
TRIGGER_DEADLINE_S = 1800


def _answer(proc: subprocess.Popen, deadline: float) -> tuple[str, str]:
    """The trigger's (stdout, stderr); one still running at `deadline` is killed."""
    try:
        return proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        return out, f"no answer after {TRIGGER_DEADLINE_S} s (killed)"


def run_backend(backend: str, triggers: int, work: Path, data: Path, pg_url: str | None) -> dict:
    """One backend: server, worker, warm-up, N triggers at once; returns the figures."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from postgres_server import create_database
    from prefect_services import (
        deploy_entrypoint,
        ensure_process_pool,
        prefect_server,
        process_environment,
        process_worker,
        production_env,
    )
    from retrain.domain.examples import recommender_config
    from retrain.domain.schedule.spec import ScheduleSpec
    from retrain.services import runs as operations
    from retrain.services import schedules as scheduling

    home = work / backend
    suffix = uuid.uuid4().hex[:8]
    store = (create_database(pg_url, f"bench_store_{suffix}") if backend == "postgresql"
             else f"sqlite:///{home / 'state.db'}")
    prefect_db = create_database(pg_url, f"bench_prefect_{suffix}") if backend == "postgresql" else None
    env = {"RETRAIN_HOME": str(home / "retrain"), "RETRAIN_DATABASE_URL": store,
           "RETRAIN_SCHEDULE_BASE_DEPLOYMENT": "training-pipeline/base",
           "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(home / "results"),
           "TF_CPP_MIN_LOG_LEVEL": "2",
           # PostgreSQL: the production set-up's worker and flow-run settings too.
           **(production_env() if backend == "postgresql" else {})}
    pool = f"bench-{suffix}"
    with ExitStack() as stack:
        stack.enter_context(process_environment(env))
        api_url = stack.enter_context(prefect_server(home / "server", database_url=prefect_db))
        stack.enter_context(temporary_settings({PREFECT_API_URL: api_url}))
        ensure_process_pool(api_url, pool)
        # One Python process per flow run (the engine alone, no workspace supervisor first).
        deploy_entrypoint(api_url, "flows/training_pipeline.py:training_pipeline", "base", pool,
                          REPO, concurrency_limit=LIMIT,
                          job_variables={"command": f"{sys.executable} -m prefect.engine"})
        stack.enter_context(process_worker(api_url, pool, home / "worker", env, cwd=REPO))
        config = recommender_config(
            data, "ranking", model_name="bench-load", pipeline_root=str(home / "pipelines"),
            pusher={"serving_base": str(home / "serving")}, training={"epochs": 1},
            beam={"args": ["--direct_running_mode=in_memory"]})
        template = operations.create_run(config).id
        view = scheduling.create_schedule(ScheduleSpec(type="weekly", day_of_week=(
            time.gmtime().tm_wday + 3) % 7, time="03:00"), run_ref=template)
        warm_up = scheduling.trigger_schedule("bench-load")
        _wait_final(api_url, view.deployment, 1, 900)

        child_env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        child_env.update(env, PREFECT_API_URL=api_url)
        started = time.monotonic()
        procs = [subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "schedules", "trigger", "bench-load"],
            cwd=REPO, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(triggers)]
        outputs = [_answer(proc, started + TRIGGER_DEADLINE_S) for proc in procs]
        trigger_wall = time.monotonic() - started
        failed = [err.strip().splitlines()[-1] if err.strip() else f"exit {proc.returncode}"
                  for proc, (_, err) in zip(procs, outputs) if proc.returncode != 0]
        done = _wait_final(api_url, view.deployment, 1 + triggers - len(failed), 3600)
        all_final = time.monotonic() - started
        waits = sorted((r.start_time - r.created).total_seconds() for r in done
                       if r.start_time and str(r.id) != warm_up)
        recorded = len(scheduling.schedule_runs("bench-load"))
        from retrain.services.reconcile import reconcile

        reconcile()  # what the reconcile-runs deployment does every 5 minutes
        reconciled = len(scheduling.schedule_runs("bench-load"))
    return {"backend": backend, "triggers": triggers, "ok": triggers - len(failed),
            "failed": len(failed), "first_error": failed[0] if failed else "-",
            "triggers_per_s": triggers / trigger_wall, "p50": percentile(waits, 0.5),
            "p95": percentile(waits, 0.95), "all_final_s": all_final,
            "runs": len(done), "recorded": recorded, "reconciled": reconciled,
            "states": ",".join(sorted({r.state_name for r in done}))}


def report(results: list[dict]) -> str:
    """The figures side by side, one column per backend."""
    rows = [("triggers exited 0", "ok", "{}"), ("triggers failed", "failed", "{}"),
            ("triggers/s", "triggers_per_s", "{:.2f}"),
            ("trigger → Running p50 (s)", "p50", "{:.1f}"),
            ("trigger → Running p95 (s)", "p95", "{:.1f}"),
            ("all runs final after (s)", "all_final_s", "{:.0f}"),
            ("flow runs / records (hooks)", None, None),
            ("records after reconcile", "reconciled", "{}"), ("final states", "states", "{}"),
            ("first failure", "first_error", "{}")]
    width = 30
    lines = [f"{'':<{width}}" + "".join(f"{r['backend']:>24}" for r in results)]
    for label, key, fmt in rows:
        cells = [(f"{r['runs']} / {r['recorded']}" if key is None else fmt.format(r[key]))
                 for r in results]
        lines.append(f"{label:<{width}}" + "".join(f"{c[:23]:>24}" for c in cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--triggers", type=int, default=50)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--rows", type=int, default=2_000)
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    from postgres_server import postgres_server
    from synthetic.config import SyntheticConfig
    from synthetic.core import generate

    work = Path(tempfile.mkdtemp(prefix="retrain-prefect-load-"))
    data = generate(SyntheticConfig(rows=args.rows, seed=7), work / "data").out_dir
    results = []
    with ExitStack() as stack:
        pg_url = (stack.enter_context(postgres_server(work / "postgres"))
                  if "postgresql" in backends else None)
        for backend in backends:
            print(f"--- {backend}: {args.triggers} triggers at once", flush=True)
            results.append(run_backend(backend, args.triggers, work, data, pg_url))
            print(report(results[-1:]), flush=True)
    print(f"\n{args.triggers} `retrain schedules trigger` processes at once; deployment "
          f"concurrency limit {LIMIT}; {os.cpu_count()} cores")
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
