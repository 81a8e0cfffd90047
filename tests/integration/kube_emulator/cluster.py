"""The emulated control plane and node agents: job controller, scheduler, kubelet, TTL.

One thread reconciles everything every 0.1 s or on any write, as the real controllers do
from their informers: Jobs get one pod at a time (a new one per failure up to
backoffLimit; killed at activeDeadlineSeconds), pending pods are bound by
`scheduling.choose_node` or marked Unschedulable, bound pods run as local processes
(`kubelet.Runtime`) and their status follows the process. Deletions (`delete_job`,
`delete_pod`) and disruptions (`preempt`) are methods, shared by the HTTP layer and the
Python control API.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import scheduling
from .jobs import JobController
from .kubelet import ContainerStartError, Runtime
from .store import (
    DEFAULT_GRACE_S, EVENTS, JOBS, NODES, PODS, TERMINAL_PHASES, ApiError, Obj, Store,
    condition, now_rfc3339, random_ip, set_condition,
)  # fmt: skip

log = logging.getLogger("kube_emulator")

TICK_S = 0.1
# The kubelet's words when a node shuts down gracefully (GKE spot preemption).
NODE_SHUTDOWN_MESSAGE = "Pod was terminated in response to imminent node shutdown."


@dataclass
class KillHook:
    """A test's request to preempt a pod as soon as `predicate()` holds."""

    predicate: Callable[[], bool]
    pod_filter: Callable[[Obj], bool]
    grace_seconds: float
    reason: str
    fired: threading.Event = field(default_factory=threading.Event)
    pod_name: str | None = None


class Cluster:
    """The emulated cluster's controllers over a `Store` and a container `Runtime`."""

    def __init__(self, store: Store, runtime: Runtime):
        self.store = store
        self.runtime = runtime
        self.jobs = JobController(self)
        self._disruptions: dict[str, tuple[str, str]] = {}  # pod uid -> (reason, message)
        self._hooks: list[KillHook] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kube-emulator-cluster",
                                        daemon=True)
        self.errors: list[str] = []

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the reconcile thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop reconciling, then kill every container process."""
        self._stop.set()
        self.store.close()
        self._thread.join(10)
        self.runtime.shutdown()

    def _run(self) -> None:
        seen = -1
        while not self._stop.is_set():
            self.store.wait_for_change(seen, TICK_S)
            if self._stop.is_set():
                return
            seen = self.store.revision
            try:
                self.reconcile()
            except Exception as exc:  # keep the cluster alive; the test sees `errors`
                problem = f"reconcile failed: {type(exc).__name__}: {exc}"
                if problem not in self.errors:  # once, not every tick
                    log.exception("kube emulator: %s", problem)
                    self.errors.append(problem)

    def reconcile(self) -> None:
        """One pass of every controller."""
        self._sync_containers()
        for job in self.store.list(JOBS):
            try:
                self.jobs.reconcile(job)
            except ApiError:  # deleted under our feet (an API call); next pass sees it
                pass
        self._schedule_and_start()
        self._run_hooks()

    # --- events ---------------------------------------------------------------------------

    def record_event(self, obj: Obj, reason: str, message: str, type_: str = "Normal",
                     component: str = "kubelet") -> None:
        """Post a core/v1 Event about `obj`, as the component would."""
        meta = obj["metadata"]
        now = now_rfc3339()
        self.store.create(EVENTS, meta.get("namespace") or "default", {
            "metadata": {"generateName": f"{meta['name']}."},
            "involvedObject": {"kind": obj["kind"], "apiVersion": obj["apiVersion"],
                               "namespace": meta.get("namespace"), "name": meta["name"],
                               "uid": meta["uid"]},
            "reason": reason, "message": message, "type": type_, "count": 1,
            "source": {"component": component}, "firstTimestamp": now, "lastTimestamp": now,
            "reportingComponent": component, "reportingInstance": "",
        })  # fmt: skip

    # --- pods: deletion and disruption ------------------------------------------------------

    def delete_pod(self, namespace: str, name: str, grace_seconds: float | None = None) -> Obj:
        """Delete a pod gracefully: a pod without a running container goes at once;
        otherwise it gets a deletionTimestamp, its container SIGTERM (SIGKILL after the
        grace period), and it is removed when the process has ended."""
        pod = self.store.require(PODS, namespace, name)
        container = self.runtime.get(pod["metadata"]["uid"])
        if container is None or container.exit_code is not None:
            return self.store.delete(PODS, namespace, name)
        if grace_seconds is None:
            grace_seconds = pod["spec"].get("terminationGracePeriodSeconds", DEFAULT_GRACE_S)

        def mark(obj: Obj) -> None:
            obj["metadata"].setdefault("deletionTimestamp", now_rfc3339())
            obj["metadata"]["deletionGracePeriodSeconds"] = int(grace_seconds)

        updated = self.store.update(PODS, namespace, name, mark)
        self.record_event(pod, "Killing", f"Stopping container {container.name}")
        self.runtime.terminate(pod["metadata"]["uid"], grace_seconds)
        return updated

    def preempt(self, namespace: str, name: str, grace_seconds: float, reason: str,
                message: str, pod_reason: str) -> None:
        """Disrupt a running pod: DisruptionTarget condition, SIGTERM, SIGKILL after
        `grace_seconds`; it ends Failed with status.reason `pod_reason` and `message`."""
        pod = self.store.require(PODS, namespace, name)
        uid = pod["metadata"]["uid"]
        self._disruptions[uid] = (pod_reason, message)

        def disrupt(obj: Obj) -> None:
            set_condition(obj.setdefault("status", {}),
                          condition("DisruptionTarget", "True", reason, message))

        self.store.update(PODS, namespace, name, disrupt)
        container_name = pod["spec"]["containers"][0]["name"]
        self.record_event(pod, "Killing", f"Stopping container {container_name}")
        if self.runtime.get(uid) is None:
            # Never started: the pod fails without a container.
            self._finish_pod(pod, None)
        else:
            self.runtime.terminate(uid, grace_seconds)

    def add_hook(self, hook: KillHook) -> KillHook:
        """Register a kill hook, polled every tick until it fires."""
        self._hooks.append(hook)
        return hook

    def _run_hooks(self) -> None:
        for hook in [h for h in self._hooks if not h.fired.is_set()]:
            try:
                ready = hook.predicate()
            except Exception:  # a predicate that raises is not ready
                continue
            if not ready:
                continue
            running = [p for p in self.store.list(PODS)
                       if p["status"].get("phase") == "Running"
                       and not p["metadata"].get("deletionTimestamp") and hook.pod_filter(p)]
            if running:
                pod = running[0]
                hook.pod_name = pod["metadata"]["name"]
                self.preempt(pod["metadata"]["namespace"], hook.pod_name, hook.grace_seconds,
                             hook.reason, NODE_SHUTDOWN_MESSAGE, "Terminated")
                hook.fired.set()

    # --- kubelet ----------------------------------------------------------------------------

    def _sync_containers(self) -> None:
        for container in self.runtime.reap():
            pods = [p for p in self.store.list(PODS) if p["metadata"]["uid"] == container.pod_uid]
            try:
                if pods:
                    self._finish_pod(pods[0], container)
            except ApiError:  # deleted meanwhile
                pass

    def _finish_pod(self, pod: Obj, container: Any) -> None:
        """Record a pod's container end (or a pod failing without one) and remove it if
        it was being deleted."""
        meta = pod["metadata"]
        disruption = self._disruptions.get(meta["uid"])
        code = container.exit_code if container is not None else 137
        phase = "Succeeded" if code == 0 and disruption is None else "Failed"
        spec_container = pod["spec"]["containers"][0]

        def finish(obj: Obj) -> None:
            status = obj.setdefault("status", {})
            status["phase"] = phase
            terminated = {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                          "startedAt": container.started_at if container else None,
                          "finishedAt": container.finished_at if container else now_rfc3339()}
            if container is not None:
                terminated["containerID"] = container.container_id
            status["containerStatuses"] = [{
                "name": spec_container["name"], "image": spec_container.get("image", ""),
                "imageID": "", "ready": False, "started": False,
                "restartCount": 0, "state": {"terminated": terminated},
                **({"containerID": container.container_id} if container else {}),
            }]  # fmt: skip
            reason = "PodCompleted" if phase == "Succeeded" else "PodFailed"
            for type_ in ("Ready", "ContainersReady"):
                set_condition(status, condition(type_, "False", reason))
            if disruption is not None:
                status["reason"], status["message"] = disruption

        self.store.update(PODS, meta["namespace"], meta["name"], finish)
        current = self.store.get(PODS, meta["namespace"], meta["name"])
        if current is not None and current["metadata"].get("deletionTimestamp"):
            self.store.delete(PODS, meta["namespace"], meta["name"])

    def _start_container(self, pod: Obj, node: Obj) -> None:
        meta = pod["metadata"]
        spec_container = pod["spec"]["containers"][0]
        host_ip = next((a["address"] for a in node["status"].get("addresses", [])
                        if a["type"] == "InternalIP"), "10.128.0.2")
        waiting = {"name": spec_container["name"], "image": spec_container.get("image", ""),
                   "imageID": "", "ready": False, "started": False, "restartCount": 0,
                   "state": {"waiting": {"reason": "ContainerCreating"}}}

        def creating(obj: Obj) -> None:
            status = obj["status"]
            status.update({"hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
                           "startTime": now_rfc3339(), "containerStatuses": [waiting]})
            set_condition(status, condition("Initialized", "True"))
            unready = f"containers with unready status: [{spec_container['name']}]"
            for type_ in ("Ready", "ContainersReady"):
                set_condition(status, condition(type_, "False", "ContainersNotReady", unready))

        self.store.update(PODS, meta["namespace"], meta["name"], creating)
        try:
            container = self.runtime.start(pod)
        except ContainerStartError as exc:
            self.record_event(pod, "Failed", f"Error: {exc}", "Warning")

            def failed(obj: Obj) -> None:
                status = obj["status"]
                status["phase"] = "Failed"
                status["containerStatuses"] = [{**waiting, "state": {"terminated": {
                    "exitCode": 128, "reason": "StartError", "message": str(exc),
                    "startedAt": None, "finishedAt": now_rfc3339()}}}]

            self.store.update(PODS, meta["namespace"], meta["name"], failed)
            return
        self.record_event(pod, "Pulled", f'Container image "{spec_container.get("image")}" '
                          "already present on machine")
        self.record_event(pod, "Started", f"Started container {spec_container['name']}")

        def running(obj: Obj) -> None:
            status = obj["status"]
            pod_ip = random_ip("10.52.")
            status.update({"phase": "Running", "podIP": pod_ip, "podIPs": [{"ip": pod_ip}]})
            status["containerStatuses"] = [{
                **waiting, "ready": True, "started": True, "containerID": container.container_id,
                "state": {"running": {"startedAt": container.started_at}}}]
            for type_ in ("Ready", "ContainersReady"):
                set_condition(status, condition(type_, "True"))

        try:
            self.store.update(PODS, meta["namespace"], meta["name"], running)
        except ApiError:
            # Deleted while its container started: a pod that is gone runs nothing.
            self.runtime.terminate(meta["uid"], 0)

    # --- scheduler --------------------------------------------------------------------------

    def _schedule_and_start(self) -> None:
        nodes = self.store.list(NODES)
        pods = self.store.list(PODS)
        pods_by_node: dict[str, list[Obj]] = {}
        for pod in pods:
            if pod["spec"].get("nodeName") and pod["status"].get("phase") not in TERMINAL_PHASES:
                pods_by_node.setdefault(pod["spec"]["nodeName"], []).append(pod)
        for pod in pods:
            meta, status = pod["metadata"], pod["status"]
            if status.get("phase") != "Pending" or meta.get("deletionTimestamp"):
                continue
            if meta["uid"] in self._disruptions:
                continue
            try:
                self._schedule_and_start_one(pod, nodes, pods_by_node)
            except ApiError:  # deleted meanwhile
                pass

    def _schedule_and_start_one(self, pod: Obj, nodes: list[Obj],
                                pods_by_node: dict[str, list[Obj]]) -> None:
        meta = pod["metadata"]
        node_name = pod["spec"].get("nodeName")
        if not node_name:
            node_name, message = scheduling.choose_node(pod, nodes, pods_by_node)
            if node_name is None:
                self._mark_unschedulable(pod, message)
                return
            pod = self._bind(pod, node_name)
            pods_by_node.setdefault(node_name, []).append(pod)
        if self.runtime.get(meta["uid"]) is None:
            node = next((n for n in nodes if n["metadata"]["name"] == node_name), None)
            if node is not None:
                self._start_container(pod, node)

    def _mark_unschedulable(self, pod: Obj, message: str) -> None:
        meta = pod["metadata"]
        old = next((c for c in pod["status"].get("conditions") or []
                    if c["type"] == "PodScheduled"), {})
        if old.get("message") == message:
            return

        def unschedulable(obj: Obj) -> None:
            set_condition(obj["status"],
                          condition("PodScheduled", "False", "Unschedulable", message))

        self.store.update(PODS, meta["namespace"], meta["name"], unschedulable)
        self.record_event(pod, "FailedScheduling", message, "Warning", "default-scheduler")

    def _bind(self, pod: Obj, node_name: str) -> Obj:
        meta = pod["metadata"]

        def bind(obj: Obj) -> None:
            obj["spec"]["nodeName"] = node_name
            set_condition(obj["status"], condition("PodScheduled", "True"))

        bound = self.store.update(PODS, meta["namespace"], meta["name"], bind)
        self.record_event(pod, "Scheduled", f"Successfully assigned {meta['namespace']}/"
                          f"{meta['name']} to {node_name}", component="default-scheduler")
        return bound

