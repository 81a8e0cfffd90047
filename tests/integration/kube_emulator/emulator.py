"""`KubeEmulator`: the Python control API of the emulated cluster.

    with KubeEmulator(base_env={"PATH": ..., "HOME": ...}, workdir=repo, root=tmp) as kube:
        kube.add_node(Node(name="spot-l4", labels={...}, gpus=1))
        ...  # KUBECONFIG=kube.kubeconfig_path for the Prefect worker
        pod = kube.wait_for_pod(lambda p: p["status"]["phase"] == "Running", 60)
        kube.preempt(pod["metadata"]["name"], grace_seconds=5)

Exiting the block stops the API server and the controllers and SIGKILLs every process a
pod started. Objects handed out are snapshots (plain dicts in the API's JSON shape).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .api import ApiServer
from .cluster import NODE_SHUTDOWN_MESSAGE, Cluster, KillHook
from .kubelet import Runtime
from .store import JOBS, NAMESPACES, NODES, PODS, Obj, Store, random_ip

GPU_RESOURCE = "nvidia.com/gpu"
ACCELERATOR_LABEL = "cloud.google.com/gke-accelerator"
GPU_TAINT = {"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"}


@dataclass
class Node:
    """A node to add to the emulated cluster. The default is a GKE L4 node (g2-standard-8):
    one nvidia-l4 GPU, tainted nvidia.com/gpu=present:NoSchedule as GKE taints GPU nodes."""

    name: str = "gke-gpu-l4-0"
    labels: dict[str, str] = field(default_factory=lambda: {ACCELERATOR_LABEL: "nvidia-l4"})
    taints: list[dict[str, str]] = field(default_factory=lambda: [dict(GPU_TAINT)])
    gpus: int = 1
    cpu: str = "7910m"
    memory: str = "27Gi"
    unschedulable: bool = False

    def manifest(self) -> Obj:
        """The Node object as the API serves it."""
        allocatable = {"cpu": self.cpu, "memory": self.memory, "pods": "110",
                       "ephemeral-storage": "100Gi"}
        if self.gpus:
            allocatable[GPU_RESOURCE] = str(self.gpus)
        return {
            "metadata": {"name": self.name, "labels": {
                "kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64", **self.labels}},
            "spec": {"taints": [dict(t) for t in self.taints],
                     **({"unschedulable": True} if self.unschedulable else {})},
            "status": {
                "capacity": dict(allocatable), "allocatable": allocatable,
                "addresses": [{"type": "InternalIP", "address": random_ip("10.128.0.")},
                              {"type": "Hostname", "address": self.name}],
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                "message": "kubelet is posting ready status"}],
                "nodeInfo": {"kubeletVersion": "v1.30.5-emulator", "osImage": "emulated",
                             "containerRuntimeVersion": "emulator://subprocess"},
            },
        }  # fmt: skip


class KubeEmulator:
    """An emulated Kubernetes cluster: API server on a free loopback port, controllers,
    and a kubelet that runs pod containers as local subprocesses.

    `base_env` is every container's environment before its own `env` (give PATH with the
    venv's bin first, HOME, LANG; not the whole test environment); `workdir` is its working
    directory unless the container sets workingDir; `root` holds the kubeconfig and pod
    logs (a new temp dir if None). `nodes` defaults to one `Node()`; `namespaces` are
    created up front (the retrain-gpu job template uses "retrain").
    """

    def __init__(self, base_env: Mapping[str, str], workdir: Path, root: Path | None = None,
                 nodes: Iterable[Node] | None = None,
                 namespaces: Iterable[str] = ("default", "kube-system", "retrain")):
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="kube-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.store = Store()
        self.runtime = Runtime(dict(base_env), Path(workdir), self.root / "pod-logs")
        self.cluster = Cluster(self.store, self.runtime)
        self.api = ApiServer(self.cluster)
        self.kubeconfig_path = self.root / "kubeconfig"
        for namespace in namespaces:
            self.create_namespace(namespace)
        for node in [Node()] if nodes is None else nodes:
            self.add_node(node)

    # --- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> KubeEmulator:
        self.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def start(self) -> None:
        """Serve the API, start the controllers and write the kubeconfig."""
        self.api.start()
        self.cluster.start()
        self.write_kubeconfig(self.kubeconfig_path)

    def stop(self) -> None:
        """Stop everything; no pod process survives this."""
        try:
            self.cluster.stop()
        finally:
            self.api.stop()
        # Every request, for whoever debugs a failing test.
        (self.root / "api-requests.log").write_text(
            "".join(f"{code} {method} {path}\n" for method, path, code in self.api.requests))
        problems = self.api.unhandled + self.cluster.errors
        if problems:
            print("kube emulator problems:\n  " + "\n  ".join(problems), file=sys.stderr)

    @property
    def url(self) -> str:
        """The API server's base URL (http://127.0.0.1:PORT)."""
        return self.api.url

    @property
    def unhandled(self) -> list[str]:
        """Requests the emulator could not serve (or failed on); empty when all is well."""
        return list(self.api.unhandled) + list(self.cluster.errors)

    def write_kubeconfig(self, path: Path, namespace: str = "default") -> Path:
        """A kubeconfig for this cluster (no auth), current context "emulator"."""
        config = {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
            "users": [{"name": "emulator", "user": {}}],
            "contexts": [{"name": "emulator", "context": {
                "cluster": "emulator", "user": "emulator", "namespace": namespace}}],
            "current-context": "emulator",
        }  # fmt: skip
        # JSON is YAML, which every kubeconfig loader reads.
        Path(path).write_text(json.dumps(config, indent=2))
        return Path(path)

    # --- cluster set-up ---------------------------------------------------------------------

    def add_node(self, node: Node | None = None, **fields: Any) -> Obj:
        """Add a node (a `Node`, or `Node(**fields)`); pending pods are retried on it."""
        return self.store.create(NODES, None, (node or Node(**fields)).manifest())

    def remove_node(self, name: str) -> None:
        """Delete a node object (pods bound to it are left as they are)."""
        self.store.delete(NODES, None, name)

    def create_namespace(self, name: str) -> Obj:
        """Create a namespace."""
        return self.store.create(NAMESPACES, None, {
            "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})

    # --- inspection -------------------------------------------------------------------------

    def jobs(self, namespace: str | None = None) -> list[Obj]:
        """Snapshots of the Jobs that exist now."""
        return self.store.list(JOBS, namespace)

    def pods(self, namespace: str | None = None) -> list[Obj]:
        """Snapshots of the pods that exist now."""
        return self.store.list(PODS, namespace)

    def deleted(self, resource: str = "jobs") -> list[Obj]:
        """The last state of every deleted object of `resource` ("jobs", "pods", ...)."""
        return [e.obj for e in self.store.iter_history(resource) if e.type == "DELETED"]

    def history(self, resource: str = "pods") -> list[tuple[str, Obj]]:
        """Every (ADDED|MODIFIED|DELETED, object) recorded for `resource`, oldest first."""
        return [(e.type, e.obj) for e in self.store.iter_history(resource)]

    def pod_log(self, name: str, namespace: str = "retrain") -> str:
        """The pod container's output so far ("" before it started)."""
        pod = self.store.require(PODS, namespace, name)
        container = self.runtime.get(pod["metadata"]["uid"])
        return container.log_path.read_text(errors="replace") if container else ""

    def pod_process(self, name: str, namespace: str = "retrain"
                    ) -> tuple[list[str], dict[str, str]]:
        """(argv, environment) the pod's container process was started with."""
        pod = self.store.require(PODS, namespace, name)
        container = self.runtime.get(pod["metadata"]["uid"])
        if container is None:
            raise LookupError(f"pod {namespace}/{name} has no container process")
        return list(container.argv), dict(container.env)

    def wait_for_pod(self, predicate: Callable[[Obj], Any], timeout: float,
                     what: str = "a matching pod") -> Obj:
        """The first existing pod for which `predicate(pod)` is truthy, polled every 0.1 s;
        AssertionError (with every pod's phase) after `timeout` seconds."""
        return self._wait(lambda: next((p for p in self.pods() if predicate(p)), None),
                          timeout, what)

    def wait_for_job(self, predicate: Callable[[Obj], Any], timeout: float,
                     what: str = "a matching job") -> Obj:
        """As `wait_for_pod`, for Jobs."""
        return self._wait(lambda: next((j for j in self.jobs() if predicate(j)), None),
                          timeout, what)

    def _wait(self, find: Callable[[], Obj | None], timeout: float, what: str) -> Obj:
        deadline = time.monotonic() + timeout
        while True:
            found = find()
            if found is not None:
                return found
            if time.monotonic() >= deadline:
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; "
                                     f"cluster: {self.describe()}")
            time.sleep(0.1)

    def describe(self) -> str:
        """One line per job and pod: name, phase / conditions (for failure messages)."""
        lines = []
        for job in self.jobs():
            conds = [c["type"] for c in job.get("status", {}).get("conditions") or []]
            lines.append(f"job {job['metadata']['name']} status={job.get('status')} {conds}")
        for pod in self.pods():
            conds = {c["type"]: c.get("reason") or c["status"]
                     for c in pod["status"].get("conditions") or []}
            lines.append(f"pod {pod['metadata']['name']} {pod['status'].get('phase')} {conds}")
        return "; ".join(lines) or "(no jobs or pods)"

    # --- disruptions ------------------------------------------------------------------------

    def preempt(self, pod_name: str, namespace: str = "retrain", grace_seconds: float = 5,
                reason: str = "TerminationByKubelet", message: str = NODE_SHUTDOWN_MESSAGE,
                pod_reason: str = "Terminated") -> None:
        """Disrupt a pod as a spot-node shutdown does: condition DisruptionTarget
        (`reason`: TerminationByKubelet, PreemptionByScheduler, EvictionByEvictionAPI...),
        SIGTERM, SIGKILL after `grace_seconds`; the pod ends Failed with
        status.reason `pod_reason` and `message` (use "Evicted" for an eviction)."""
        self.cluster.preempt(namespace, pod_name, grace_seconds, reason, message, pod_reason)

    def kill_pod_when(self, predicate: Callable[[], Any],
                      pod_filter: Callable[[Obj], Any] = lambda pod: True,
                      grace_seconds: float = 5,
                      reason: str = "TerminationByKubelet") -> KillHook:
        """Preempt (as `preempt`) the first Running pod matching `pod_filter` as soon as
        `predicate()` holds, checked every 0.1 s; `hook.fired` is set (and `hook.pod_name`
        filled) when it has."""
        return self.cluster.add_hook(KillHook(predicate, pod_filter, grace_seconds, reason))
