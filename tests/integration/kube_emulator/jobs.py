"""The emulated Job controller (batch/v1, Kubernetes 1.30 semantics, one completion).

A Job gets one pod at a time; a failed pod is replaced while `status.failed` stays within
`spec.backoffLimit` (immediately: the emulator has no back-off delay), after which the Job
fails with BackoffLimitExceeded; at `activeDeadlineSeconds` its pods are deleted and it
fails with DeadlineExceeded; a succeeded pod completes it. A finished Job is deleted
`ttlSecondsAfterFinished` later. `delete_job` honours `propagationPolicy`. The API
server's Job defaulting and the little validation the emulator does live here too.
"""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from .store import (
    DEFAULT_GRACE_S, JOBS, PODS, TERMINAL_PHASES, ApiError, Obj, condition, has_condition,
    now_rfc3339, parse_rfc3339, set_condition,
)  # fmt: skip

if TYPE_CHECKING:
    from .cluster import Cluster

# Keys Prefect's worker requires in the pod spec that a PodSpec does not have; the API
# server drops unknown fields (field validation "Warn"), so the emulator does too.
NOT_POD_SPEC_KEYS = ("parallelism", "completions")


def job_pod_labels(job: Obj) -> dict[str, str]:
    """The labels the Job controller puts on its pods (and the API server on the
    template): both the legacy and the batch.kubernetes.io/ spellings."""
    name, uid = job["metadata"]["name"], job["metadata"]["uid"]
    return {"controller-uid": uid, "job-name": name,
            "batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name}


def validate_job(body: Obj) -> None:
    """422 Invalid for a Job without a pod template container, as the API server says."""
    containers = (((body.get("spec") or {}).get("template") or {}).get("spec") or {}
                  ).get("containers")
    if not containers:
        raise ApiError(422, "Invalid", "Job.batch is invalid: spec.template.spec.containers: "
                       "Required value")


def pod_spec_defaults(spec: Obj) -> None:
    """The API server's normalisation of a PodSpec: quantities are strings."""
    for container in spec.get("containers") or []:
        for kind in ("requests", "limits"):
            values = (container.get("resources") or {}).get(kind)
            if values:
                values.update({k: str(v) for k, v in values.items() if v is not None})


def job_defaults(job: Obj) -> None:
    """The API server's defaulting of a new Job (needs its uid)."""
    spec = job.setdefault("spec", {})
    for key, value in (("backoffLimit", 6), ("completions", 1), ("parallelism", 1),
                       ("completionMode", "NonIndexed"), ("suspend", False),
                       ("podReplacementPolicy", "TerminatingOrFailed")):
        spec.setdefault(key, value)
    labels = job_pod_labels(job)
    spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid":
                                        job["metadata"]["uid"]}}
    template = spec["template"]
    tmeta = template.setdefault("metadata", {})
    tmeta["labels"] = {**(tmeta.get("labels") or {}), **labels}
    for key in NOT_POD_SPEC_KEYS:
        template["spec"].pop(key, None)
    pod_spec_defaults(template["spec"])
    job["status"] = {}


class JobController:
    """Reconciles Jobs into pods for a `Cluster` (called from its reconcile thread)."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.store = cluster.store
        self._counted: dict[str, set[str]] = {}  # job uid -> pod uids counted in status
        self._known: dict[str, dict[str, str]] = {}  # job uid -> {pod uid: last phase}

    def delete_job(self, namespace: str, name: str, propagation: str | None,
                   grace_seconds: float | None = None) -> Obj:
        """Delete a Job. Foreground: the Job stays (deletionTimestamp, finalizer
        foregroundDeletion) until its pods are gone. Background: the Job goes now, its
        pods after it. Orphan (the API's default for Jobs): the pods stay."""
        job = self.store.require(JOBS, namespace, name)
        pods = self._owned_pods(job)
        policy = propagation or "Orphan"
        if policy == "Foreground" and pods:
            def mark(obj: Obj) -> None:
                obj["metadata"].setdefault("deletionTimestamp", now_rfc3339())
                obj["metadata"]["deletionGracePeriodSeconds"] = int(grace_seconds or 0)
                obj["metadata"]["finalizers"] = ["foregroundDeletion"]

            result = self.store.update(JOBS, namespace, name, mark)
        else:
            result = self.store.delete(JOBS, namespace, name)
        if policy in ("Foreground", "Background"):
            for pod in pods:
                self._try_delete_pod(pod, grace_seconds)
        self.cluster.record_event(job, "SuccessfulDelete", f"Deleted job {name}",
                                  component="job-controller")
        return result

    def _try_delete_pod(self, pod: Obj, grace_seconds: float | None) -> None:
        try:
            self.cluster.delete_pod(pod["metadata"]["namespace"], pod["metadata"]["name"],
                                    grace_seconds)
        except ApiError:  # already gone
            pass

    def _owned_pods(self, job: Obj) -> list[Obj]:
        return self.store.list(PODS, job["metadata"]["namespace"],
                               label_selector=f"controller-uid={job['metadata']['uid']}")

    def _count(self, job: Obj, pods: list[Obj]) -> tuple[int, int]:
        """(succeeded, failed) including pods that ended since the last pass."""
        uid, status = job["metadata"]["uid"], job.get("status") or {}
        counted = self._counted.setdefault(uid, set())
        succeeded, failed = status.get("succeeded", 0), status.get("failed", 0)
        for pod in pods:
            phase = pod["status"].get("phase")
            if phase in TERMINAL_PHASES and pod["metadata"]["uid"] not in counted:
                counted.add(pod["metadata"]["uid"])
                succeeded += phase == "Succeeded"
                failed += phase == "Failed"
        # A pod removed before the controller saw it end (deleted while running) failed.
        known = self._known.setdefault(uid, {})
        present = {p["metadata"]["uid"]: p["status"].get("phase", "") for p in pods}
        for pod_uid, phase in known.items():
            if pod_uid not in present and pod_uid not in counted:
                counted.add(pod_uid)
                succeeded += phase == "Succeeded"
                failed += phase != "Succeeded"
        known.clear()
        known.update(present)
        return succeeded, failed

    def reconcile(self, job: Obj) -> None:
        """Move one Job one step towards its spec."""
        meta, spec = job["metadata"], job["spec"]
        ns, name = meta["namespace"], meta["name"]
        pods = self._owned_pods(job)
        if meta.get("deletionTimestamp"):
            if not pods:
                self.store.delete(JOBS, ns, name)
            return
        if has_condition(job, "Complete") or has_condition(job, "Failed"):
            self._expire(job)
            return
        succeeded, failed = self._count(job, pods)
        active = [p for p in pods if p["status"].get("phase") not in TERMINAL_PHASES
                  and not p["metadata"].get("deletionTimestamp")]
        start = (job.get("status") or {}).get("startTime")
        deadline = spec.get("activeDeadlineSeconds")
        outcome = None
        if succeeded >= (spec.get("completions") or 1):
            outcome = condition("Complete", "True")
            self.cluster.record_event(job, "Completed", "Job completed",
                                      component="job-controller")
        elif failed > spec.get("backoffLimit", 6):
            outcome = condition("Failed", "True", "BackoffLimitExceeded",
                                "Job has reached the specified backoff limit")
        elif deadline and start and (datetime.now(timezone.utc) - parse_rfc3339(start)
                                     ).total_seconds() >= deadline:
            outcome = condition("Failed", "True", "DeadlineExceeded",
                                "Job was active longer than specified deadline")
        if outcome is not None and outcome["type"] == "Failed":
            self.cluster.record_event(job, outcome["reason"], outcome["message"], "Warning",
                                      "job-controller")
            for pod in active:
                failed += 1
                self._counted[meta["uid"]].add(pod["metadata"]["uid"])
                self._try_delete_pod(pod, None)
            active = []
        elif outcome is None and not active:
            pod = self._create_pod(job)
            active = [pod]
            self.cluster.record_event(job, "SuccessfulCreate",
                                      f"Created pod: {pod['metadata']['name']}",
                                      component="job-controller")

        def update(obj: Obj) -> None:
            st = obj.setdefault("status", {})
            st.setdefault("startTime", now_rfc3339())
            st.pop("active", None)
            if active:
                st["active"] = len(active)
            st["ready"] = sum(has_condition(p, "Ready") for p in active)
            st["terminating"] = 0
            st["uncountedTerminatedPods"] = {}
            for key, value in (("succeeded", succeeded), ("failed", failed)):
                if value:
                    st[key] = value
            if outcome is not None:
                set_condition(st, outcome)
                if outcome["type"] == "Complete":
                    st["completionTime"] = now_rfc3339()

        self.store.update(JOBS, ns, name, update)

    def _expire(self, job: Obj) -> None:
        """The TTL-after-finished controller."""
        ttl = job["spec"].get("ttlSecondsAfterFinished")
        finished_at = next((c["lastTransitionTime"]
                            for c in (job.get("status") or {}).get("conditions") or []
                            if c["type"] in ("Complete", "Failed") and c["status"] == "True"),
                           None)
        if ttl is None or finished_at is None:
            return
        if (datetime.now(timezone.utc) - parse_rfc3339(finished_at)).total_seconds() >= ttl:
            self.delete_job(job["metadata"]["namespace"], job["metadata"]["name"], "Background")

    def _create_pod(self, job: Obj) -> Obj:
        meta, template = job["metadata"], job["spec"]["template"]
        tmeta = template.get("metadata") or {}
        spec = copy.deepcopy(template["spec"])
        spec.setdefault("restartPolicy", "Never")
        spec.setdefault("terminationGracePeriodSeconds", DEFAULT_GRACE_S)
        spec.setdefault("schedulerName", "default-scheduler")
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("serviceAccount", spec["serviceAccountName"])
        pod = {
            "metadata": {
                "generateName": f"{meta['name']}-",
                "labels": {**(tmeta.get("labels") or {}), **job_pod_labels(job)},
                "annotations": {**(tmeta.get("annotations") or {}),
                                "batch.kubernetes.io/job-tracking": ""},
                "ownerReferences": [{
                    "apiVersion": "batch/v1", "kind": "Job", "name": meta["name"],
                    "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}],
            },
            "spec": spec,
            "status": {"phase": "Pending", "qosClass": "Burstable"},
        }  # fmt: skip
        return self.store.create(PODS, meta["namespace"], pod)
