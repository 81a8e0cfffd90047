"""The Trainer pod on the emulated Kubernetes cluster reads and writes the emulated bucket:
the pipeline root is gs://, so the Transform output the pod trains on, its checkpoints and the
model it writes reach the training flow through the bucket alone. The pod gets the GCS
connection the way production pods do, by the block's name (RETRAIN_GCS_BLOCK) resolved from
the Prefect API, and the cluster's egress to Google's hosts is the emulator's proxy."""

from __future__ import annotations

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
ROOT = "gs://retrain-pipelines/kubernetes"


def _save_block(api_url: str, gcs_emulator) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from blocks import GcsConnection

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        GcsConnection(service_account_info=gcs_emulator.service_account_key(),
                      endpoint=gcs_emulator.endpoint, project="retrain-tests").save(
            "emulated-k8s", overwrite=True)


def test_the_trainer_pod_trains_from_and_into_the_bucket(
        kubernetes_prefect_server, gcs_emulator, tiny_interactions, tmp_path, monkeypatch):
    from google.cloud import storage

    from retrain.domain.examples import recommender_config

    server = kubernetes_prefect_server
    _save_block(server, gcs_emulator)
    shared = {
        "RETRAIN_HOME": str(tmp_path / "retrain"),
        "RETRAIN_DATABASE_URL": f"sqlite:///{tmp_path / 'state.db'}",
        "RETRAIN_TRAINER_POLL_SECONDS": "1",
        # The record (SQLite) is on this test's disk, which the emulated pods share, as a
        # hostPath volume would be: a store the pods keep.
        "RETRAIN_PERSISTENT_VOLUMES": str(tmp_path),
        "RETRAIN_GCS_BLOCK": "emulated-k8s",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    # The pod's image env, and the cluster's route to Google's hosts (the emulator's proxy).
    base_env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
                "HOME": str(tmp_path / "pod-home"), "LANG": "C.UTF-8",
                **gcs_emulator.tensorflow_environment()}
    pool = f"retrain-gpu-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.endpoint)  # this test's own look
    gcs = storage.Client.create_anonymous_client()
    data = gcs.bucket("retrain-data")
    for path in sorted(tiny_interactions.glob("*.csv")):
        data.blob(f"kubernetes/{path.name}").upload_from_filename(str(path))
    with KubeEmulator(base_env=base_env, workdir=REPO, root=tmp_path / "kube",
                      nodes=[Node(name="gke-cpu-0", labels={}, taints=[], gpus=0)]) as kube, \
            process_environment(shared):
        create_kubernetes_pool(server, pool, TEMPLATE, tmp_path / "pool")
        with kubernetes_worker(server, pool, kube, tmp_path / "worker", cwd=REPO):
            deploy_entrypoint(server, "flows/gpu_trainer.py:gpu_trainer", "gcs-test", pool,
                              REPO, job_variables={
                                  "image": "retrain-trainer:test",
                                  "env": {**shared, "PYTHONPATH": str(REPO)}})
            config = recommender_config(
                "gs://retrain-data/kubernetes", "ranking", model_name="gcs-k8s-ranker",
                pipeline_root=ROOT, pusher={"serving_base": f"{ROOT}-serving"},
                training={"epochs": 2, "batch_size": 128, "learning_rate": 0.05},
                evaluator={"trivial_baseline": {"enabled": False}},
                beam={"args": ["--direct_running_mode=in_memory"]},
                gpu={"deployment": "gpu-trainer/gcs-test"})
            flow_env = {"PREFECT_API_URL": server,
                        "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(tmp_path / "results"),
                        **gcs_emulator.tensorflow_environment()}
            state = run_training_flow(config, flow_env, REPO)
        assert not kube.unhandled, kube.unhandled
        pods = [obj for _, obj in kube.history("pods")]

    assert state["type"] == "COMPLETED", state["message"]
    assert len({p["metadata"]["name"] for p in pods}) == 1  # one Trainer pod
    pod_env = {e["name"]: e.get("value") for e in pods[-1]["spec"]["containers"][0]["env"]}
    assert pod_env["RETRAIN_GCS_BLOCK"] == "emulated-k8s"
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in pod_env  # resolved from the block in the pod
    names = [blob.name for blob in gcs.list_blobs("retrain-pipelines", prefix="kubernetes/")]
    trainer = [name for name in names if name.startswith("kubernetes/gcs-k8s-ranker/Trainer/")]
    assert any("/model/" in name and name.endswith("/saved_model.pb") for name in trainer), trainer
    assert any(name.endswith("/model_run/epochs.jsonl") for name in trainer), trainer
    # No stage output on local disk (MLflow's default artifact root, local here, has a copy).
    assert not list(tmp_path.glob("**/Trainer")) and not list(tmp_path.glob("**/Transform"))
