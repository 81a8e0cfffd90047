"""The Trainer on a Kubernetes work pool: the unmodified `prefect worker start --type
kubernetes` against the emulated cluster (`kube_emulator`), whose kubelet runs each pod's
`prefect flow-run execute` as a local process.

The training flow runs in this process against a real Prefect server; its Trainer stage
submits the `gpu-trainer` deployment once per attempt. Shown here:
- a pod killed mid-training is resubmitted and resumes from its last epoch checkpoint; the
  final model has exactly the configured epochs, and the run completes;
- a GPU type no node has stays unschedulable, its Job is deleted and the next option is
  submitted; on the (fake) GPU node TensorFlow sees no GPU, so the stage fails with that
  message instead of training on the CPU, and that failure is not retried.
Every attempt is on the run record with its reason.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import pytest

from kube_emulator import KubeEmulator, Node
from kube_emulator.worker import create_kubernetes_pool, kubernetes_worker
from prefect_services import deploy_entrypoint, process_environment, run_training_flow

pytestmark = [pytest.mark.slow, pytest.mark.service]
REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "deployments" / "k8s" / "gpu_trainer_job_template.json"
EPOCHS = 5


@pytest.fixture(scope="module")
def cluster(kubernetes_prefect_server, tiny_interactions, tmp_path_factory):
    """An emulated cluster with an L4 GPU node and a CPU node, a kubernetes worker on a pool made from
    our job template, and the gpu-trainer deployment on it; the shared store and roots."""
    prefect_server = kubernetes_prefect_server
    home = tmp_path_factory.mktemp("gpu-trainer")
    shared = {
        "RETRAIN_HOME": str(home / "retrain"),
        "RETRAIN_DATABASE_URL": f"sqlite:///{home / 'state.db'}",
        "RETRAIN_TRAINER_POLL_SECONDS": "1",
        # The record (SQLite) is on this test's disk, which the emulated pods share, as a
        # hostPath volume would be: a store the pods keep.
        "RETRAIN_PERSISTENT_VOLUMES": str(home),
        "RETRAIN_TRAINER_CANCEL_WAIT_SECONDS": "60",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    # What a pod gets beyond the job's env: the image's PATH, HOME and language, no more.
    base_env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
                "HOME": str(home / "pod-home"), "LANG": "C.UTF-8"}
    pool = f"retrain-gpu-{uuid.uuid4().hex[:6]}"
    with KubeEmulator(base_env=base_env, workdir=REPO, root=home / "kube",
                      nodes=[Node(name="gke-l4-0", gpus=1),
                             Node(name="gke-cpu-0", labels={}, taints=[], gpus=0)]) as kube, \
            process_environment(shared):
        create_kubernetes_pool(prefect_server, pool, TEMPLATE, home / "pool")
        with kubernetes_worker(prefect_server, pool, kube, home / "worker", cwd=REPO):
            deploy_entrypoint(
                prefect_server, "flows/gpu_trainer.py:gpu_trainer", "kubernetes-test", pool,
                REPO, job_variables={
                    "image": "retrain-trainer:test",
                    # As prefect.yaml's retrain-gpu env, plus what the image sets itself.
                    "env": {**shared, "PYTHONPATH": str(REPO),
                            "PREFECT_FLOW_RUN_EXECUTE_SIGTERM_BEHAVIOR": "crash"},
                })
            # The flow's stage cache gets storage of its own; set only in the flow's
            # process, since this one's Prefect keeps its result storage once resolved.
            flow_env = {"PREFECT_API_URL": prefect_server,
                        "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(home / "results")}
            yield {"kube": kube, "home": home, "data": tiny_interactions, "env": flow_env}
        assert not kube.unhandled, kube.unhandled


def _config(cluster, gpu: dict, epochs: int = EPOCHS):
    from retrain.domain.examples import recommender_config

    home = cluster["home"]
    return recommender_config(
        cluster["data"], "ranking", model_name="gpu-ranker",
        pipeline_root=str(home / "pipelines"), pusher={"serving_base": str(home / "serving")},
        training={"epochs": epochs, "batch_size": 128, "learning_rate": 0.05},
        beam={"args": ["--direct_running_mode=in_memory"]},
        gpu={"deployment": "gpu-trainer/kubernetes-test", "unschedulable_wait_seconds": 20,
             **gpu},
    )


def _run_pipeline(cluster, config) -> dict:
    """Run the training flow against the module's server; its final state as a dict."""
    return run_training_flow(config, cluster["env"], REPO)


def _record(flow_run_id: str):
    from retrain.store import runs
    from retrain.store.sessions import sessions

    with sessions()() as session:
        run = runs.run_for_flow_run(session, flow_run_id)
        return {
            "status": run.status, "error_stage": run.error_stage,
            "error_message": run.error_message,
            "epochs": [e.epoch for e in run.epochs],
            "strategy": run.trainer_strategy, "gpus": run.gpus_visible,
            "attempts": [(a.number, a.gpu_type, a.gpu_count, a.outcome, a.reason or "",
                          a.resumed_from_epoch, a.flow_run_id) for a in run.trainer_attempts],
        }


def _artifacts(api_url: str, flow_run_id: str) -> dict[str, dict]:
    """The flow run's artifacts, as the UI reads them, by key (or type, for unkeyed ones)."""
    import httpx

    reply = httpx.post(f"{api_url}/artifacts/filter", timeout=30,
                       json={"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}})
    reply.raise_for_status()
    return {artifact["key"] or artifact["type"]: artifact for artifact in reply.json()}


def _checkpointed(home: Path) -> int:
    from tasks.trainer.remote import checkpointed_epoch

    dirs = list((home / "pipelines" / "gpu-ranker" / "Trainer").glob("*.checkpoints"))
    return max((checkpointed_epoch(str(d)) for d in dirs), default=0)


def test_a_preempted_trainer_pod_resumes_from_its_last_epoch(cluster):
    kube, home = cluster["kube"], cluster["home"]
    # A spot preemption as soon as the first epoch's checkpoint is on shared storage.
    hook = kube.kill_pod_when(lambda: _checkpointed(home) >= 1, grace_seconds=3)
    state = _run_pipeline(cluster, _config(cluster, {}))

    assert hook.fired.is_set(), "the pod was never preempted"
    assert state["type"] == "COMPLETED", state["message"]
    record = _record(state["flow_run_id"])
    print("attempts:", record["attempts"])  # shown with -s: what the run record says
    first, second = record["attempts"]
    assert first[:4] == (1, None, 0, "interrupted"), first
    assert second[:4] == (2, None, 0, "succeeded"), second
    assert 1 <= second[5] < EPOCHS, f"resumed after epoch {second[5]}"
    # Exactly the configured epochs: each once, in the record and beside the model.
    assert record["epochs"] == list(range(1, EPOCHS + 1))
    trainer = next((home / "pipelines" / "gpu-ranker" / "Trainer").glob("*/model/recommender.json"))
    facts = json.loads(trainer.read_text())
    assert facts["epochs_run"] == EPOCHS and facts["resumed_from_epoch"] == second[5]
    epochs_file = trainer.parent.parent / "model_run" / "epochs.jsonl"
    assert [json.loads(line)["epoch"] for line in epochs_file.read_text().splitlines()] == \
        list(range(1, EPOCHS + 1))
    assert record["strategy"] and record["gpus"] == []
    # The run view: both pods added their epochs to the training flow run's one epochs table.
    table = _artifacts(cluster["env"]["PREFECT_API_URL"], state["flow_run_id"])["gpu-ranker-epochs"]
    assert [row["epoch"] for row in json.loads(table["data"])] == list(range(1, EPOCHS + 1))
    assert {"loss", "val_loss", "val_rmse", "seconds"} <= set(json.loads(table["data"])[-1])
    assert table["description"] == f"Trainer epochs: {EPOCHS} of {EPOCHS} done"
    # The checkpoints are gone once the model is complete; the interrupted pod's Job failed.
    assert _checkpointed(home) == 0
    pods = {obj["metadata"]["name"]: obj for _, obj in kube.history("pods")}
    assert any(p["status"].get("phase") == "Failed" for p in pods.values())


def test_an_unschedulable_gpu_falls_back_and_a_missing_gpu_fails_the_stage(cluster):
    kube = cluster["kube"]
    jobs_before = {j["metadata"]["name"] for j in kube.jobs()} | {
        j["metadata"]["name"] for j in kube.deleted("jobs")}
    config = _config(cluster, {
        "enabled": True, "type": "nvidia-tesla-t4", "count": 1,
        "fallback": [{"type": "nvidia-l4", "count": 1}],
    })
    state = _run_pipeline(cluster, config)

    assert state["type"] == "FAILED", state
    record = _record(state["flow_run_id"])
    print("attempts:", record["attempts"], "error:", record["error_message"])
    (n1, type1, count1, outcome1, reason1, _, run1), (n2, type2, _, outcome2, reason2, _, _) = \
        record["attempts"]
    assert (n1, type1, count1, outcome1) == (1, "nvidia-tesla-t4", 1, "unschedulable")
    assert reason1.startswith("pod unschedulable for ") and "Unschedulable" in reason1
    assert (n2, type2, outcome2) == (2, "nvidia-l4", "failed")
    assert "GPUs requested (count=1) but none is visible to TensorFlow" in reason2
    assert record["error_stage"] == "Trainer"
    assert "none is visible to TensorFlow" in record["error_message"]
    assert "not retried" in record["error_message"]
    # The T4 attempt's Job was deleted; the L4 pod was bound to the GPU node and asked for it.
    new_deleted = [j for j in kube.deleted("jobs") if j["metadata"]["name"] not in jobs_before]
    assert any(j["metadata"]["labels"].get("prefect.io/flow-run-id") == run1
               for j in new_deleted), [j["metadata"]["labels"] for j in new_deleted]
    l4_pods = [obj for _, obj in kube.history("pods")
               if obj["spec"].get("nodeSelector", {}).get("cloud.google.com/gke-accelerator")
               == "nvidia-l4"]
    assert l4_pods and l4_pods[-1]["spec"].get("nodeName") == "gke-l4-0"
    limits = l4_pods[-1]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] in (1, "1")


def test_an_unknown_trainer_deployment_fails_the_stage_naming_it(cluster):
    # Other epochs: the Trainer's cache key leaves the deployment out, so the first test's
    # model would otherwise be reused without asking for any deployment.
    config = _config(cluster, {"deployment": "gpu-trainer/no-such-deployment"}, epochs=2)
    state = _run_pipeline(cluster, config)

    assert state["type"] == "FAILED", state
    record = _record(state["flow_run_id"])
    assert record["error_stage"] == "Trainer" and record["attempts"] == []
    assert ("gpu.deployment: no deployment 'gpu-trainer/no-such-deployment' on the Prefect "
            "server") in record["error_message"]
