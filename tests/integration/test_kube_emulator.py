"""The Kubernetes API emulation (`kube_emulator`) driven by the unmodified Prefect
Kubernetes worker and its kopf observer, on the retrain-gpu job template.

Against a real `prefect server start`: a GPU probe run completes in a pod that ran as a
local process with the job's environment; a pod no node can take stays Unschedulable, the
observer reports it to Prefect, and cancelling the run makes the worker delete its Job; a
preempted pod's run ends Crashed. Without Prefect: the scheduler's messages are the ones
Prefect's diagnosis understands, Jobs retry up to backoffLimit and stop at their deadline,
watches resume from a resourceVersion, a kill hook preempts a pod the moment its condition
holds, and no pod process outlives the emulator.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import httpx
import psutil
import pytest
from kube_emulator import KubeEmulator, Node, kubernetes_worker
from kube_emulator.kubelet import POD_UID_ENV
from kube_emulator.worker import create_kubernetes_pool
from prefect.client.schemas.objects import State, StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.states import Cancelling
from prefect_kubernetes.diagnostics import diagnose_k8s_pod
from prefect_services import deploy_entrypoint, flow_run_process, prefect_client, wait_for

from deployments.gpu_jobs import TEMPLATE_PATH, job_variables
from retrain.domain.recommender import GpuConfig

pytestmark = [pytest.mark.slow, pytest.mark.service]

REPO = Path(__file__).parents[2]
PROBE = "tests/testdata/flows/probe.py:probe"
POOL = "test-kube-emulator-gpu"
NAMESPACE = "retrain"  # the job template's default
IMAGE = "retrain-trainer:test"
ENV_CHECK = {"RETRAIN_EMULATOR_CHECK": "from-job-variables"}
# Engine start-up on a 2-core machine takes ~15 s; these leave room for a loaded CI box.
START_TIMEOUT_S = 90
END_TIMEOUT_S = 60
BUSY_SECONDS = 300


def _base_env(home: Path) -> dict[str, str]:
    """What every pod process starts from: the venv's tools first, a private HOME."""
    home.mkdir(parents=True, exist_ok=True)
    venv_bin = str(Path(sys.executable).parent)
    return {"PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin", "HOME": str(home),
            "LANG": "C.UTF-8"}


# --- the emulator alone ------------------------------------------------------------------


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[KubeEmulator]:
    """A fresh emulated cluster with the default node (one nvidia-l4, GPU taint)."""
    with KubeEmulator(_base_env(tmp_path / "home"), REPO, root=tmp_path / "kube") as emulator:
        yield emulator
        assert emulator.unhandled == []


def _job(command: str, *, backoff_limit: int = 0, deadline: int | None = None,
         selector: dict[str, str] | None = None, gpus: int = 1) -> dict:
    spec: dict = {"backoffLimit": backoff_limit, "template": {"spec": {
        "restartPolicy": "Never",
        "nodeSelector": selector or {},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "containers": [{"name": "main", "image": IMAGE, "command": ["sh", "-c", command],
                        "resources": {"limits": {"nvidia.com/gpu": gpus}}}]}}}
    if deadline is not None:
        spec["activeDeadlineSeconds"] = deadline
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"generateName": "t-"}, "spec": spec}


def _create_job(kube: KubeEmulator, manifest: dict) -> dict:
    response = httpx.post(f"{kube.url}/apis/batch/v1/namespaces/{NAMESPACE}/jobs", json=manifest)
    assert response.status_code == 201, response.text
    return response.json()


def _unschedulable(pod: dict) -> bool:
    return any(c.get("reason") == "Unschedulable" for c in pod["status"].get("conditions") or [])


def _finished(kube: KubeEmulator, name: str) -> dict | None:
    job = next((j for j in kube.jobs() if j["metadata"]["name"] == name), None)
    done = job and any(c["type"] in ("Complete", "Failed") for c in
                       job["status"].get("conditions") or [])
    return job if done else None


@pytest.mark.parametrize(
    ("node", "selector", "gpus", "category"),
    [
        (Node(), {"cloud.google.com/gke-accelerator": "nvidia-tesla-v100"}, 1,
         "Unschedulable.NodeAffinity"),
        (Node(), {}, 2, "Unschedulable.InsufficientResources"),
        (Node(taints=[{"key": "cloud.google.com/gke-spot", "value": "true",
                       "effect": "NoSchedule"}]), {}, 1, "Unschedulable.Taint"),
    ],
    ids=["selector", "gpus", "taint"],
)
def test_unschedulable_pod_reads_as_prefect_diagnosis(tmp_path, node, selector, gpus, category):
    with KubeEmulator(_base_env(tmp_path / "home"), REPO, root=tmp_path / "kube",
                      nodes=[node]) as kube:
        _create_job(kube, _job("true", selector=selector, gpus=gpus))
        pod = kube.wait_for_pod(_unschedulable, 10, "an unschedulable pod")
        diagnosis = diagnose_k8s_pod(pod["status"])
        assert kube.unhandled == []
    assert pod["status"]["phase"] == "Pending"
    assert diagnosis is not None and diagnosis.category.value == category, diagnosis
    # Prefect normalises the scheduler text only when it recognises every reason in it.
    assert diagnosis._dedupe_key()[2] == "scheduler/normalized", diagnosis._dedupe_key()


def test_pending_pod_is_scheduled_when_a_fitting_node_joins(kube):
    selector = {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}
    job = _create_job(kube, _job("echo on-t4", selector=selector))
    kube.wait_for_pod(lambda p: p["status"].get("conditions"), 10, "a scheduling attempt")

    kube.add_node(Node(name="gke-t4-0", labels=selector))

    done = wait_for(lambda: _finished(kube, job["metadata"]["name"]), 20, 0.1, "the job")
    assert done["status"]["succeeded"] == 1
    (pod,) = kube.pods(NAMESPACE)
    assert pod["spec"]["nodeName"] == "gke-t4-0"
    assert kube.pod_log(pod["metadata"]["name"], NAMESPACE) == "on-t4\n"


def test_failed_pods_are_retried_up_to_backoff_limit(kube):
    job = _create_job(kube, _job("exit 3", backoff_limit=2))

    done = wait_for(lambda: _finished(kube, job["metadata"]["name"]), 20, 0.1, "the job")

    failed = done["status"]["conditions"][-1]
    assert (failed["type"], failed["reason"]) == ("Failed", "BackoffLimitExceeded")
    assert done["status"]["failed"] == 3
    pods = kube.pods(NAMESPACE)
    assert len(pods) == 3
    for pod in pods:
        (status,) = pod["status"]["containerStatuses"]
        assert pod["status"]["phase"] == "Failed"
        assert status["state"]["terminated"]["exitCode"] == 3
        assert pod["metadata"]["ownerReferences"][0]["uid"] == job["metadata"]["uid"]


def test_active_deadline_kills_the_pod(kube):
    job = _create_job(kube, _job("sleep 300", deadline=1))

    done = wait_for(lambda: _finished(kube, job["metadata"]["name"]), 20, 0.1, "the job")

    assert done["status"]["conditions"][-1]["reason"] == "DeadlineExceeded"
    wait_for(lambda: not kube.pods(NAMESPACE), 40, 0.1, "the pod to be deleted")


def test_watch_resumes_from_resource_version_and_errors_are_statuses(kube):
    listed = httpx.get(f"{kube.url}/api/v1/namespaces/{NAMESPACE}/pods").json()
    job = _create_job(kube, _job("true"))
    wait_for(lambda: _finished(kube, job["metadata"]["name"]), 20, 0.1, "the job")

    watch = httpx.get(f"{kube.url}/api/v1/namespaces/{NAMESPACE}/pods", params={
        "watch": "true", "resourceVersion": listed["metadata"]["resourceVersion"],
        "timeoutSeconds": "1"})

    events = [json.loads(line) for line in watch.text.splitlines()]
    assert [e["type"] for e in events][0] == "ADDED"
    phases = [e["object"]["status"].get("phase") for e in events]
    assert phases[0] == "Pending" and phases[-1] == "Succeeded"
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(set(versions))
    missing = httpx.get(f"{kube.url}/apis/batch/v1/namespaces/{NAMESPACE}/jobs/nope")
    assert missing.status_code == 404
    assert missing.json()["reason"] == "NotFound"
    taken = httpx.post(f"{kube.url}/api/v1/namespaces", json={"metadata": {"name": NAMESPACE}})
    assert (taken.status_code, taken.json()["reason"]) == (409, "AlreadyExists")


def test_kill_pod_when_preempts_at_the_moment_a_condition_holds(kube, tmp_path):
    trigger = tmp_path / "now"
    job = _create_job(kube, _job("trap 'echo terminating; exit 143' TERM; "
                                 "while true; do sleep 0.1; done"))
    hook = kube.kill_pod_when(trigger.exists, grace_seconds=5)
    pod = kube.wait_for_pod(lambda p: p["status"].get("phase") == "Running", 10)
    assert not hook.fired.is_set()

    trigger.touch()

    done = wait_for(lambda: _finished(kube, job["metadata"]["name"]), 20, 0.1, "the job")
    assert hook.pod_name == pod["metadata"]["name"]
    assert done["status"]["conditions"][-1]["reason"] == "BackoffLimitExceeded"
    (failed,) = kube.pods(NAMESPACE)
    assert failed["status"]["phase"] == "Failed"
    assert failed["status"]["reason"] == "Terminated"
    (disruption,) = [c for c in failed["status"]["conditions"] if c["type"] == "DisruptionTarget"]
    assert disruption["reason"] == "TerminationByKubelet"
    terminated = failed["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 143
    assert "terminating" in kube.pod_log(pod["metadata"]["name"], NAMESPACE)


def test_no_pod_process_outlives_the_emulator(tmp_path):
    with KubeEmulator(_base_env(tmp_path / "home"), REPO, root=tmp_path / "kube") as kube:
        # The child escapes the process group, as Prefect's engine does.
        _create_job(kube, _job("setsid sleep 300 & sleep 300"))
        pod = kube.wait_for_pod(lambda p: p["status"].get("phase") == "Running", 10)
        wait_for(lambda: len(_pod_processes(pod["metadata"]["uid"])) == 3, 10, 0.1,
                 "the pod's processes")
    assert _pod_processes(pod["metadata"]["uid"]) == []


def _pod_processes(pod_uid: str) -> list[psutil.Process]:
    """Live processes marked as the pod's, found independently of the emulator's kubelet."""
    found = []
    for proc in psutil.process_iter():
        try:
            if (proc.status() != psutil.STATUS_ZOMBIE
                    and proc.environ().get(POD_UID_ENV) == pod_uid):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


# --- the Prefect Kubernetes worker against it ----------------------------------------------


@pytest.fixture(scope="module")
def prefect_api(kubernetes_prefect_server: str) -> str:
    """The session's server for Kubernetes pools, whose CANCELLING timeout is seconds, not
    the default five minutes (see conftest.py).

    That timeout is how Prefect 3.8.8 cancels a run its worker has already handed to
    Kubernetes: the worker watches for Cancelling only while it submits a run, and a run
    whose pod never starts has no engine to stop. Once the timeout passes the server marks
    the run Cancelled and queues a teardown the worker executes with
    `kill_infrastructure`, which deletes the Job.
    """
    return kubernetes_prefect_server


@pytest.fixture(scope="module")
def cluster(session_dir: Path) -> Iterator[KubeEmulator]:
    """One emulated cluster for the worker tests: the default nvidia-l4 node."""
    root = session_dir / "kube-emulator"
    with KubeEmulator(_base_env(root / "home"), REPO, root=root) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def k8s_worker(prefect_api: str, session_dir: Path, cluster: KubeEmulator
               ) -> Iterator[subprocess.Popen]:
    """The retrain-gpu template's pool and an unmodified Kubernetes worker on it."""
    home = session_dir / f"prefect-worker-{POOL}"
    create_kubernetes_pool(prefect_api, POOL, TEMPLATE_PATH, home)
    with kubernetes_worker(prefect_api, POOL, cluster, home) as proc:
        yield proc


def _deploy(api_url: str, name: str, gpu: GpuConfig, env: dict[str, str] | None = None) -> UUID:
    variables = job_variables(gpu, image=IMAGE, env={**ENV_CHECK, **(env or {})},
                              cpu_request="1", memory_request="1Gi")
    return deploy_entrypoint(api_url, PROBE, name, POOL, REPO, job_variables=variables)


def _start_probe(api_url: str, deployment_id: UUID, seconds: float, marker_dir: Path) -> UUID:
    with prefect_client(api_url) as client:
        run = client.create_flow_run_from_deployment(
            deployment_id, parameters={"seconds": seconds, "marker_dir": str(marker_dir)})
    return run.id


def _state(api_url: str, flow_run_id: UUID) -> State:
    with prefect_client(api_url) as client:
        return client.read_flow_run(flow_run_id).state


def _final_state(api_url: str, flow_run_id: UUID) -> State | None:
    state = _state(api_url, flow_run_id)
    return state if state is not None and state.is_final() else None


def _run_pod(kube: KubeEmulator, flow_run_id: UUID, timeout: float, what: str,
             predicate=lambda pod: True) -> dict:
    return kube.wait_for_pod(
        lambda p: p["metadata"]["labels"].get("prefect.io/flow-run-id") == str(flow_run_id)
        and predicate(p), timeout, what)


def test_gpu_probe_run_completes_in_an_emulated_pod(prefect_api, cluster, k8s_worker,
                                                     tmp_path):
    deployment = _deploy(prefect_api, "gpu-l4", GpuConfig(enabled=True, type="nvidia-l4"))
    run_id = _start_probe(prefect_api, deployment, 0, tmp_path)

    state = wait_for(lambda: _final_state(prefect_api, run_id),
                     START_TIMEOUT_S + END_TIMEOUT_S, what=f"flow run {run_id} to finish")

    assert state.is_completed(), f"{state.name}: {state.message}; {cluster.describe()}"
    assert (tmp_path / f"{run_id}.started").exists()
    pod = _run_pod(cluster, run_id, 10, "the run's pod",
                   lambda p: p["status"].get("phase") == "Succeeded")
    # The retrain-gpu template's Job, as the worker rendered it, is what ran.
    assert pod["spec"]["nodeName"] == "gke-gpu-l4-0"
    assert pod["spec"]["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert pod["spec"]["serviceAccountName"] == "retrain-trainer"
    (container,) = pod["spec"]["containers"]
    assert container["image"] == IMAGE
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    argv, env = cluster.pod_process(pod["metadata"]["name"], NAMESPACE)
    assert argv[:3] == ["prefect", "flow-run", "execute"]
    assert env["RETRAIN_EMULATOR_CHECK"] == ENV_CHECK["RETRAIN_EMULATOR_CHECK"]
    assert env["PREFECT__FLOW_RUN_ID"] == str(run_id)
    log = httpx.get(f"{cluster.url}/api/v1/namespaces/{NAMESPACE}/pods/"
                    f"{pod['metadata']['name']}/log")
    assert log.status_code == 200
    assert "Completed" in log.text, log.text[-2000:]
    job = wait_for(lambda: _finished(cluster, pod["metadata"]["labels"]["job-name"]), 10, 0.1,
                   "the job to complete")
    assert job["status"]["succeeded"] == 1
    assert (job["spec"]["backoffLimit"], job["spec"]["activeDeadlineSeconds"]) == (0, 86400)
    assert cluster.unhandled == []


def _pod_events(api_url: str, flow_run_id: UUID) -> list[dict]:
    """The observer's `prefect.kubernetes.pod.*` events related to the run."""
    with prefect_client(api_url) as client:
        response = client.request("POST", "/events/filter", json={"filter": {
            "event": {"prefix": ["prefect.kubernetes.pod."]},
            "related": {"id": [f"prefect.flow-run.{flow_run_id}"]},
        }})
    return response.json()["events"]


def _unschedulable_events(api_url: str, flow_run_id: UUID) -> list[dict]:
    return [e for e in _pod_events(api_url, flow_run_id)
            if e["event"] == "prefect.kubernetes.pod.pending"
            and e["resource"].get("kubernetes.diagnosis", "").startswith("Unschedulable")]


def test_unschedulable_gpu_pod_is_reported_and_cancelling_deletes_its_job(
    prefect_api, cluster, k8s_worker, tmp_path
):
    deployment = _deploy(prefect_api, "gpu-v100",
                         GpuConfig(enabled=True, type="nvidia-tesla-v100"))
    run_id = _start_probe(prefect_api, deployment, 0, tmp_path)
    pod = _run_pod(cluster, run_id, START_TIMEOUT_S, "an unschedulable pod", _unschedulable)
    job_name = pod["metadata"]["labels"]["job-name"]

    (event, *_) = wait_for(lambda: _unschedulable_events(prefect_api, run_id),
                           END_TIMEOUT_S, what="the observer's Unschedulable pod event")
    assert event["resource"]["kubernetes.diagnosis"] == "Unschedulable.NodeAffinity"
    assert event["resource"]["prefect.resource.name"] == pod["metadata"]["name"]
    wait_for(lambda: _state(prefect_api, run_id).name == "InfrastructurePending",
             END_TIMEOUT_S, what="the run to be InfrastructurePending")

    # What `prefect flow-run cancel` and the UI do.
    with prefect_client(prefect_api) as client:
        result = client.set_flow_run_state(run_id, Cancelling())
    assert result.status == SetStateStatus.ACCEPT, result.details

    state = wait_for(lambda: _final_state(prefect_api, run_id), END_TIMEOUT_S,
                     what="a final state")
    assert state.type == StateType.CANCELLED, f"{state.name}: {state.message}"
    # The server's teardown request reaches the worker after the state change.
    wait_for(lambda: job_name in {j["metadata"]["name"] for j in cluster.deleted("jobs")},
             END_TIMEOUT_S, what=f"the worker to delete job {job_name}")
    assert job_name not in {j["metadata"]["name"] for j in cluster.jobs()}
    assert pod["metadata"]["name"] not in {p["metadata"]["name"] for p in cluster.pods()}
    assert not (tmp_path / f"{run_id}.started").exists()


def test_preempted_pod_ends_its_run_crashed(prefect_api, cluster, k8s_worker, tmp_path):
    deployment = _deploy(prefect_api, "gpu-l4-crash", GpuConfig(enabled=True, type="nvidia-l4"),
                         env={"PREFECT_FLOW_RUN_EXECUTE_SIGTERM_BEHAVIOR": "crash"})
    run_id = _start_probe(prefect_api, deployment, BUSY_SECONDS, tmp_path)
    wait_for((tmp_path / f"{run_id}.started").exists, START_TIMEOUT_S,
             what=f"flow run {run_id} to start")
    # The job's environment reached the process that runs the flow.
    process = flow_run_process(run_id)
    assert process is not None, f"no process runs flow run {run_id}"
    assert process.environ()["RETRAIN_EMULATOR_CHECK"] == ENV_CHECK["RETRAIN_EMULATOR_CHECK"]
    pod = _run_pod(cluster, run_id, 10, "the running pod",
                   lambda p: p["status"].get("phase") == "Running")

    cluster.preempt(pod["metadata"]["name"], NAMESPACE, grace_seconds=10)

    state = wait_for(lambda: _final_state(prefect_api, run_id), END_TIMEOUT_S,
                     what="a final state")
    assert state.is_crashed(), f"{state.name}: {state.message}"
    failed = _run_pod(cluster, run_id, 10, "the failed pod",
                      lambda p: p["status"].get("phase") == "Failed")
    assert failed["metadata"]["name"] == pod["metadata"]["name"]
    assert failed["status"]["reason"] == "Terminated"
    assert any(c["type"] == "DisruptionTarget" for c in failed["status"]["conditions"])
    job = wait_for(lambda: _finished(cluster, pod["metadata"]["labels"]["job-name"]), 30, 0.1,
                   "the job to fail")
    assert job["status"]["conditions"][-1]["reason"] == "BackoffLimitExceeded"
    wait_for(lambda: not psutil.pid_exists(process.pid) or _exited(process), 30, 0.1,
             "the flow-run process to be gone")
    assert cluster.unhandled == []


def _exited(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
