"""A real Prefect server and process worker for integration tests, as plain helpers.

The session harness (`prefect_test_harness`) serves the API in-process but runs no
scheduler and no workers, so crash, cancellation, schedule and automation tests need the
real thing: `prefect server start` and `prefect worker start --type process`, each a
subprocess with its own PREFECT_HOME and log file. Fixtures live in conftest.py and the
test modules; this module only starts, stops and inspects.

The test process's default API is the session harness, so every client call against a
spawned server goes through `prefect_client(api_url)` (or `temporary_settings`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from uuid import UUID

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import psutil

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

PREFECT = Path(sys.executable).with_name("prefect")
PRODUCTION_ENV = Path(__file__).resolve().parents[2] / "deployments" / "production.env"
SERVER_START_TIMEOUT_S = 120.0
WORKER_START_TIMEOUT_S = 60.0
STOP_GRACE_S = 15.0

T = TypeVar("T")


# A run refused a deployment concurrency slot is rescheduled this many seconds later
# (Prefect's default: 30). The load tests queue ~50 runs behind a limit of 4: at 30 s each
# freed slot idles ~25 s on average before the next run takes it.
QUEUE_RETRY = {"PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": "5"}


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(
    predicate: Callable[[], T],
    timeout: float,
    interval: float = 0.5,
    what: str = "condition",
) -> T:
    """Poll `predicate` until it returns something truthy and return that value.

    Raises AssertionError naming `what` and the last value seen once `timeout` seconds pass.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting for {what}; last seen: {value!r}"
            )
        time.sleep(interval)


@contextmanager
def process_environment(env: dict[str, str]) -> Iterator[None]:
    """Set `env` in this process (so it reads the same store as the services it starts) and
    restore the previous values afterwards; retrain's cached settings are re-read both ways."""
    from retrain.settings import get_settings

    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()


@contextmanager
def prefect_client(api_url: str) -> Iterator["SyncPrefectClient"]:
    """A synchronous Prefect client bound to `api_url` rather than the session harness."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api_url}):
        with get_client(sync_client=True) as client:
            yield client


def _service_env(home: Path, settings: dict[str, str]) -> dict[str, str]:
    """This process's environment without any PREFECT_* variable (a developer's profile
    must not point a test service at a real API), plus `settings`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    env.update(
        {
            "PREFECT_HOME": str(home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "INFO",
        }
    )
    env.update(settings)
    return env


def _log_tail(path: Path, chars: int = 4000) -> str:
    text = path.read_text(errors="replace") if path.exists() else "(no log)"
    return text[-chars:]


@contextmanager
def _subprocess(
    args: list[str],
    env: dict[str, str],
    cwd: Path,
    log: Path,
    strays: Callable[[], list[psutil.Process]] = list,
) -> Iterator[subprocess.Popen]:
    """Run `args` in a new process group with output appended to `log`; when the block
    exits, stop it (see `_stop`)."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            args, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield proc
    finally:
        _stop(proc, strays)


def _stop(proc: subprocess.Popen, strays: Callable[[], list[psutil.Process]]) -> None:
    """SIGTERM the process group, SIGKILL it after STOP_GRACE_S, then kill what is left of
    its descendants and of `strays()` (asked before and after): Prefect starts each flow
    run in a process group of its own, which the group signal does not reach."""
    try:
        leftovers = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        leftovers = []
    leftovers += strays()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(STOP_GRACE_S)
            break
        except subprocess.TimeoutExpired:
            continue
    leftovers += strays()
    for child in leftovers:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(leftovers, timeout=STOP_GRACE_S)


def production_env() -> dict[str, str]:
    """deployments/production.env's settings (KEY=VALUE lines; comments skipped)."""
    settings = {}
    for line in PRODUCTION_ENV.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings[key.strip()] = value.strip()
    return settings


def local_job_variables(**extra) -> dict:
    """prefect.yaml's job variables of the embedded default's process pool (retrain-local),
    with `extra` on top: a test's deployment runs its flows as `prefect deploy` would."""
    import yaml

    prefect_yaml = PRODUCTION_ENV.parents[1] / "prefect.yaml"
    pools = yaml.safe_load(prefect_yaml.read_text())["definitions"]["work_pools"]
    return {**pools["retrain_local"]["job_variables"], **extra}


def server_errors(home: Path, limit: int = 20) -> str:
    """The distinct error lines of the server log under `home` (for a failing assertion:
    what the server said when it answered 5xx)."""
    log = home / "server.log"
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    errors = dict.fromkeys(line.strip()[:300] for line in lines
                           if "Error" in line or "Exception" in line or "Timeout" in line)
    return "\n".join(list(errors)[:limit]) or "(no error lines in the server log)"


def asyncpg_url(sqlalchemy_url: str) -> str:
    """The URL of the same PostgreSQL database for Prefect's server (asyncpg driver)."""
    from sqlalchemy.engine import make_url

    return make_url(sqlalchemy_url).set(drivername="postgresql+asyncpg").render_as_string(
        hide_password=False)


@contextmanager
def prefect_server(home: Path, env: dict[str, str] | None = None,
                   database_url: str | None = None, ui: bool = False) -> Iterator[str]:
    """Run `prefect server start` on a free loopback port with its own PREFECT_HOME and
    SQLite database under `home` (or the PostgreSQL database `database_url`, the production
    set-up); yield its API URL once /health answers.

    On PostgreSQL the server runs with deployments/production.env, as in production.
    `env` adds settings (e.g. scheduler loop seconds). With `ui`, the Prefect UI is served
    at the URL's root (the API URL without /api) and talks to this server's API. The log
    is `home/server.log`; its tail is in the error if the server exits or is not healthy
    within SERVER_START_TIMEOUT_S.
    """
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    log = home / "server.log"
    settings = {
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": (
            asyncpg_url(database_url) if database_url
            else f"sqlite+aiosqlite:///{home / 'server.db'}"),
        "PREFECT_SERVER_UI_ENABLED": str(ui).lower(),
        # The UI's default API is port 4200's: point the browser at this server instead.
        **({"PREFECT_SERVER_UI_API_URL": api_url} if ui else {}),
        **(production_env() if database_url else {}),
        **(env or {}),
    }
    args = [str(PREFECT), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with _subprocess(args, _service_env(home, settings), home, log) as proc:
        _await_ready(proc, lambda: _healthy(api_url), SERVER_START_TIMEOUT_S,
                     "prefect server", "healthy", log)
        yield api_url


def _await_ready(proc: subprocess.Popen, ready: Callable[[], bool], timeout: float,
                 what: str, state: str, log: Path) -> None:
    """Wait until `ready()`; fail with the log's tail if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}; {log}:\n{_log_tail(log)}")
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not {state} after {timeout:.0f}s; {log}:\n{_log_tail(log)}")
        time.sleep(0.25)


def _healthy(api_url: str) -> bool:
    try:
        return httpx.get(f"{api_url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def ensure_process_pool(api_url: str, pool: str) -> None:
    """Create the process work pool `pool` with Prefect's default job template, unless it
    exists."""
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists
    from prefect.workers.process import ProcessWorker

    template = ProcessWorker.get_default_base_job_template()
    with prefect_client(api_url) as client:
        try:
            client.create_work_pool(
                WorkPoolCreate(name=pool, type="process", base_job_template=template)
            )
        except ObjectAlreadyExists:
            pass


@contextmanager
def process_worker(
    api_url: str, pool: str, home: Path, env: dict[str, str], cwd: Path
) -> Iterator[subprocess.Popen]:
    """Run `prefect worker start --type process` on `pool` (created if missing) against
    `api_url`; yield the worker process once it has registered with the server.

    The worker polls every second. Its environment, which flow runs inherit, is this
    process's minus PREFECT_* plus `env`; PREFECT_HOME is `home` and the log (flow-run
    output included) is `home/worker.log`. On exit the worker and every flow-run process
    it started are stopped.
    """
    home.mkdir(parents=True, exist_ok=True)
    ensure_process_pool(api_url, pool)
    name = f"{pool}-{uuid.uuid4().hex[:8]}"
    settings = {
        "PREFECT_API_URL": api_url,
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        # Look no further ahead than a poll: schedule tests see runs start on time.
        "PREFECT_WORKER_PREFETCH_SECONDS": "1",
        **env,
    }
    log = home / "worker.log"
    args = [str(PREFECT), "worker", "start", "--pool", pool, "--type", "process", "--name", name]
    # Flow runs of a worker that died are orphans outside its process tree; they still
    # carry its name.
    strays = partial(_processes_with_env, "PREFECT__WORKER_NAME", name)
    with _subprocess(args, _service_env(home, settings), cwd, log, strays) as proc:
        _await_ready(proc, lambda: _worker_online(api_url, pool, name), WORKER_START_TIMEOUT_S,
                     f"worker {name!r}", "registered", log)
        yield proc


def _worker_online(api_url: str, pool: str, name: str) -> bool:
    with prefect_client(api_url) as client:
        return any(w.name == name for w in client.read_workers_for_work_pool(pool))


def deploy_entrypoint(
    api_url: str,
    entrypoint: str,
    name: str,
    pool: str,
    source_dir: Path,
    parameters: dict | None = None,
    job_variables: dict | None = None,
    concurrency_limit: int | None = None,
) -> UUID:
    """Register (or update) deployment `name` of the flow at `entrypoint`
    ("path/file.py:flow_fn", relative to `source_dir`) on work pool `pool`; return its id.

    Prefect's local-source deployment: the flow is loaded here for its name and parameter
    schema, and the deployment's pull step sets the working directory to `source_dir`, so
    a process worker runs the code in place. Call from synchronous code.
    """
    from prefect import Flow
    from prefect.client.schemas.objects import ConcurrencyLimitConfig
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api_url}):
        flow = Flow.from_source(source=str(source_dir.resolve()), entrypoint=entrypoint)
        deployment = flow.to_deployment(
            name=name,
            work_pool_name=pool,
            parameters=parameters or {},
            job_variables=job_variables or {},
            # As prefect.yaml's training_limit: more runs wait in AwaitingConcurrencySlot.
            concurrency_limit=(ConcurrencyLimitConfig(limit=concurrency_limit,
                                                      collision_strategy="ENQUEUE")
                               if concurrency_limit else None),
        )
        return deployment.apply(work_pool_name=pool)


def _processes_with_env(key: str, value: str) -> list[psutil.Process]:
    """This user's processes whose environment has `key`=`value`."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.uids().real == os.getuid() and proc.environ().get(key) == value:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def _is_hook_runner(proc: psutil.Process) -> bool:
    # After the engine exits, the worker loads on_crashed / on_cancellation hooks in a
    # separate `<bootstrap>.py hook ...` process with the run's environment.
    cmdline = proc.cmdline()
    return any(
        arg.endswith("_workspace_runtime_bootstrap.py") and nxt == "hook"
        for arg, nxt in zip(cmdline, cmdline[1:])
    )


def flow_run_process(flow_run_id: UUID | str) -> psutil.Process | None:
    """The OS process executing flow run `flow_run_id`, or None.

    That is the process a worker started for the run (workspace preparation, then the
    engine, under one PID): the one of this user's processes whose environment has
    PREFECT__FLOW_RUN_ID=<id>, not counting hook runners.
    """
    for proc in _processes_with_env("PREFECT__FLOW_RUN_ID", str(flow_run_id)):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and not _is_hook_runner(proc):
                return proc
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return None


class WebhookReceiver:
    """A local HTTP endpoint that keeps every JSON body POSTed to it (the notification
    target of automation tests)."""

    def __init__(self, url: str, received: list[dict]):
        self.url = url
        self.received = received

    def matching(self, *fragments: str) -> list[dict]:
        """Bodies whose JSON text contains every fragment."""
        return [body for body in list(self.received)
                if all(fragment in json.dumps(body) for fragment in fragments)]


@contextmanager
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """Serve a WebhookReceiver on a free loopback port for the duration of the block."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                received.append(json.loads(raw or b"null"))
            except json.JSONDecodeError:
                received.append({"raw": raw.decode(errors="replace")})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args) -> None:  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield WebhookReceiver(f"http://127.0.0.1:{server.server_address[1]}/notify", received)
    finally:
        server.shutdown()
        server.server_close()


# The training flow in a process of its own: Prefect's client-side services (events, logs)
# are per process, and the test process's stay bound to the session harness.
_RUN_FLOW = """
import json, sys
from flows.training_pipeline import training_pipeline
from retrain.domain.config import PipelineConfig
state = training_pipeline(PipelineConfig.model_validate_json(sys.stdin.read()), return_state=True)
print(json.dumps({"flow_run_id": str(state.state_details.flow_run_id),
                  "type": state.type.value, "message": state.message}))
"""


def run_training_flow(config, env: dict[str, str], cwd: Path, timeout: float = 1200) -> dict:
    """Run `training-pipeline` on `config` in a fresh process with `env` added (e.g. the
    PREFECT_API_URL of a spawned server); its final state as {flow_run_id, type, message}."""
    done = subprocess.run(
        [sys.executable, "-c", _RUN_FLOW], input=config.model_dump_json(by_alias=True),
        env={**os.environ, **env}, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])

