"""A real `prefect worker start --type kubernetes` pointed at a `KubeEmulator`.

The worker is unmodified prefect-kubernetes: it finds no in-cluster config (the service
environment has no KUBERNETES_SERVICE_HOST), falls back to KUBECONFIG, creates Jobs through
the emulated API and runs its kopf observer against it, watching `namespaces`.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from prefect_services import (
    PREFECT,
    WORKER_START_TIMEOUT_S,
    _await_ready,
    _service_env,
    _subprocess,
    _worker_online,
)

from .emulator import KubeEmulator


def create_kubernetes_pool(api_url: str, pool: str, base_job_template: Path, home: Path
                           ) -> None:
    """`prefect work-pool create <pool> --type kubernetes --base-job-template <it>
    --overwrite`, the way the retrain-gpu pool is created; raises with its output if it
    fails."""
    home.mkdir(parents=True, exist_ok=True)
    env = _service_env(home, {"PREFECT_API_URL": api_url})
    args = [str(PREFECT), "work-pool", "create", pool, "--type", "kubernetes",
            "--base-job-template", str(base_job_template), "--overwrite"]
    done = subprocess.run(args, env=env, cwd=home, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


@contextmanager
def kubernetes_worker(
    api_url: str,
    pool: str,
    kube: KubeEmulator,
    home: Path,
    env: dict[str, str] | None = None,
    namespaces: Iterable[str] = ("retrain",),
    cwd: Path | None = None,
) -> Iterator[subprocess.Popen]:
    """Run `prefect worker start --pool <pool> --type kubernetes` against `api_url` and
    the emulated cluster `kube`; yield the worker process once it has registered.

    The pool must exist (see `create_kubernetes_pool`), or the worker would create one with
    Prefect's default template. The worker polls every second, its observer watches
    `namespaces`, and worker-side cancellation of pending runs is on (what the
    `prefect.flow-run.Cancelling` tests need); `env` adds or overrides settings. Its
    PREFECT_HOME is `home`, its log `home/worker.log`. On exit the worker is stopped;
    pod processes belong to `kube` and stop with it.
    """
    home.mkdir(parents=True, exist_ok=True)
    name = f"{pool}-{uuid.uuid4().hex[:8]}"
    settings = {
        "PREFECT_API_URL": api_url,
        "KUBECONFIG": str(kube.kubeconfig_path),
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_WORKER_PREFETCH_SECONDS": "1",
        "PREFECT_INTEGRATIONS_KUBERNETES_OBSERVER_NAMESPACES": ",".join(namespaces),
        **(env or {}),
    }
    service_env = _service_env(home, settings)
    # In-cluster detection must fail so the worker uses KUBECONFIG, as on a laptop.
    for key in ("KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
        service_env.pop(key, None)
    log = home / "worker.log"
    args = [str(PREFECT), "worker", "start", "--pool", pool, "--type", "kubernetes",
            "--name", name]
    with _subprocess(args, service_env, cwd or home, log) as proc:
        _await_ready(proc, lambda: _worker_online(api_url, pool, name),
                     WORKER_START_TIMEOUT_S, f"worker {name!r}", "registered", log)
        yield proc

