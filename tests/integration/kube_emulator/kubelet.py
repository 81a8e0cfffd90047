"""The emulated kubelet's container runtime: a pod's container is a local subprocess.

argv is the container's `command` + `args` (the image is not pulled or used), resolved on
the pod's PATH; the environment is the emulator's base environment overlaid with the
container's `env` name/value pairs (`valueFrom` is ignored), plus HOSTNAME (as Kubernetes
sets it) and KUBE_EMULATOR_POD_UID; the working directory is the container's `workingDir`
or the emulator's. stdout and stderr go to one log file per pod.

A container is a PID namespace in Kubernetes: when its main process ends, everything else
in it is killed. The process group alone does not say that here (Prefect starts the flow
engine in a session of its own), so every process started for a pod is found by its
KUBE_EMULATOR_POD_UID environment variable and SIGKILLed once the main process has exited,
and on shutdown. A termination sends SIGTERM to the main process's group (what an init
such as `tini -g` does; a bare PID 1 without a handler would ignore it) and SIGKILL to all
of the pod's processes after the grace period.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from .store import now_rfc3339

POD_UID_ENV = "KUBE_EMULATOR_POD_UID"


class ContainerStartError(Exception):
    """The runtime could not start the container (e.g. executable not found)."""


@dataclass
class Container:
    """One running (or finished) container process and what the kubelet knows of it."""

    pod_uid: str
    name: str
    proc: subprocess.Popen
    log_path: Path
    env: dict[str, str]
    argv: list[str]
    started_at: str = field(default_factory=now_rfc3339)
    kill_at: float | None = None  # monotonic time for SIGKILL after a SIGTERM
    exit_code: int | None = None
    finished_at: str | None = None

    @property
    def container_id(self) -> str:
        """A containerd-like id for containerStatuses."""
        return f"emulator://{self.proc.pid}"


class Runtime:
    """Starts, signals and reaps pod containers; thread-safe."""

    def __init__(self, base_env: dict[str, str], workdir: Path, log_dir: Path):
        self.base_env = dict(base_env)
        self.workdir = Path(workdir)
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.containers: dict[str, Container] = {}

    def log_path(self, pod: dict[str, Any]) -> Path:
        """Where the pod's container output goes (exists once it has started)."""
        meta = pod["metadata"]
        return self.log_dir / f"{meta['namespace']}_{meta['name']}_{meta['uid'][:8]}.log"

    def start(self, pod: dict[str, Any]) -> Container:
        """Start the pod's first container; ContainerStartError if it cannot run."""
        spec = pod["spec"]["containers"][0]
        argv = [str(a) for a in (spec.get("command") or []) + (spec.get("args") or [])]
        if not argv:
            raise ContainerStartError("no command specified")
        env = dict(self.base_env)
        env.update({e["name"]: str(e.get("value") or "") for e in spec.get("env") or []
                    if "name" in e and "valueFrom" not in e})
        env["HOSTNAME"] = pod["metadata"]["name"]
        env[POD_UID_ENV] = pod["metadata"]["uid"]
        executable = shutil.which(argv[0], path=env.get("PATH", os.defpath))
        if executable is None:
            raise ContainerStartError(
                f'exec: "{argv[0]}": executable file not found in $PATH')
        cwd = Path(spec.get("workingDir") or self.workdir)
        log_path = self.log_path(pod)
        with log_path.open("ab") as out:
            try:
                proc = subprocess.Popen(
                    [executable, *argv[1:]], env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                )
            except OSError as exc:
                raise ContainerStartError(f"failed to start container: {exc}") from exc
        container = Container(pod["metadata"]["uid"], spec["name"], proc, log_path, env, argv)
        with self._lock:
            self.containers[container.pod_uid] = container
        return container

    def get(self, pod_uid: str) -> Container | None:
        """The container started for this pod, if any."""
        with self._lock:
            return self.containers.get(pod_uid)

    def terminate(self, pod_uid: str, grace_seconds: float) -> None:
        """SIGTERM the container's processes now and SIGKILL them after `grace_seconds`
        (0: SIGKILL now). A second call can only shorten the grace period."""
        container = self.get(pod_uid)
        if container is None or container.exit_code is not None:
            return
        deadline = time.monotonic() + max(grace_seconds, 0)
        if container.kill_at is not None and container.kill_at <= deadline:
            return
        first = container.kill_at is None
        container.kill_at = deadline
        if grace_seconds <= 0:
            self._signal(container, signal.SIGKILL)
        elif first:
            self._signal(container, signal.SIGTERM)

    def reap(self) -> list[Container]:
        """Deliver overdue SIGKILLs and collect containers whose main process ended since
        the last call (each is returned once, with exit_code and finished_at set)."""
        finished = []
        with self._lock:
            running = [c for c in self.containers.values() if c.exit_code is None]
        for container in running:
            if container.kill_at is not None and time.monotonic() >= container.kill_at:
                self._signal(container, signal.SIGKILL)
            code = container.proc.poll()
            if code is None:
                continue
            # The PID namespace goes with its first process.
            _kill_processes(_pod_processes(container.pod_uid), signal.SIGKILL)
            container.exit_code = 128 - code if code < 0 else code
            container.finished_at = now_rfc3339()
            finished.append(container)
        return finished

    def shutdown(self) -> None:
        """SIGKILL every container process (and all it started) and wait for them."""
        with self._lock:
            containers = list(self.containers.values())
        for container in containers:
            if container.proc.poll() is None:
                self._signal(container, signal.SIGKILL)
        for container in containers:
            try:
                container.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        leftovers = [p for c in containers for p in _pod_processes(c.pod_uid)]
        _kill_processes(leftovers, signal.SIGKILL)
        psutil.wait_procs(leftovers, timeout=10)

    def _signal(self, container: Container, sig: signal.Signals) -> None:
        # SIGTERM goes to the main process's group, as `tini -g` delivers it; SIGKILL
        # reaches everything in the "container", as the runtime's does.
        targets = _pod_processes(container.pod_uid) if sig == signal.SIGKILL else []
        try:
            os.killpg(container.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        _kill_processes(targets, sig)


def _pod_processes(pod_uid: str) -> list[psutil.Process]:
    """Live processes of this user carrying the pod's marker variable."""
    found = []
    for proc in psutil.process_iter():
        try:
            if (proc.uids().real == os.getuid() and proc.status() != psutil.STATUS_ZOMBIE
                    and proc.environ().get(POD_UID_ENV) == pod_uid):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def _kill_processes(processes: list[psutil.Process], sig: signal.Signals) -> None:
    for proc in processes:
        try:
            proc.send_signal(sig)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
