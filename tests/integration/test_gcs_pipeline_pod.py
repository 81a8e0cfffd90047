"""The production topology on emulations: a training-pipeline deployment on a CPU Kubernetes
pool (deployments/k8s/pipeline_job_template.json, as prefect.yaml's `kubernetes` deployment)
runs the whole flow in a pod of the emulated cluster against the emulated bucket, and its
Trainer in a pod of the GPU pool. Nothing is shared through a local disk: each pod has a home
of its own, data, artifacts and models are on gs://, the run record on PostgreSQL, MLflow on
a database of its own with its artifacts on gs://, the GCS connection resolved in each pod
from the block's name. The next run, in a new pod, finds every stage done from the markers on
the bucket and starts no Trainer pod. A pod left with MLflow's local default refuses to run."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

from kube_emulator import KubeEmulator, Node
from kube_emulator.worker import create_kubernetes_pool, kubernetes_worker
from postgres_server import create_database
from prefect_services import deploy_entrypoint

pytestmark = [pytest.mark.slow, pytest.mark.service]
REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deployments" / "k8s"
ROOT = "gs://retrain-pipelines/pods"


def test_the_whole_flow_runs_in_a_pod_with_its_trainer_in_another(
        kubernetes_prefect_server, gcs_emulator, postgres_db, tiny_interactions, tmp_path,
        monkeypatch):
    from google.cloud import storage
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from blocks import GcsConnection
    from retrain.domain.examples import recommender_config
    from retrain.services.database import upgrade_store

    server = kubernetes_prefect_server
    with temporary_settings(updates={PREFECT_API_URL: server}):
        GcsConnection(service_account_info=gcs_emulator.service_account_key(),
                      endpoint=gcs_emulator.endpoint, project="retrain-tests").save(
            "emulated-pods", overwrite=True)
    monkeypatch.setenv("RETRAIN_DATABASE_URL", postgres_db)
    upgrade_store()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.endpoint)  # this test's own look
    gcs = storage.Client.create_anonymous_client()
    for path in sorted(tiny_interactions.glob("*.csv")):
        gcs.bucket("retrain-data").blob(f"pods/{path.name}").upload_from_filename(str(path))

    mlflow_db = create_database(postgres_db, f"mlflow_{uuid.uuid4().hex[:8]}")
    shared = {"RETRAIN_DATABASE_URL": postgres_db, "RETRAIN_GCS_BLOCK": "emulated-pods",
              "RETRAIN_MLFLOW_TRACKING_URI": mlflow_db,
              "RETRAIN_MLFLOW_ARTIFACT_ROOT": "gs://retrain-pipelines/mlflow",
              "RETRAIN_TRAINER_POLL_SECONDS": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
              "PYTHONPATH": str(REPO), "PREFECT_FLOW_RUN_EXECUTE_SIGTERM_BEHAVIOR": "crash"}

    def home(pod: str) -> dict[str, str]:
        return {"HOME": str(tmp_path / pod), "RETRAIN_HOME": str(tmp_path / pod / "retrain")}

    # The images' env, and the cluster's route to Google's hosts (the emulator's proxy).
    base_env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "LANG": "C.UTF-8",
                **gcs_emulator.tensorflow_environment()}
    cpu_pool, gpu_pool = (f"retrain-{kind}-{uuid.uuid4().hex[:6]}" for kind in ("cpu", "gpu"))
    with KubeEmulator(base_env=base_env, workdir=REPO, root=tmp_path / "kube",
                      nodes=[Node(name="gke-cpu-0", labels={}, taints=[], gpus=0)]) as kube:
        create_kubernetes_pool(server, cpu_pool, K8S / "pipeline_job_template.json",
                               tmp_path / "cpu-pool")
        create_kubernetes_pool(server, gpu_pool, K8S / "gpu_trainer_job_template.json",
                               tmp_path / "gpu-pool")
        with kubernetes_worker(server, cpu_pool, kube, tmp_path / "cpu-worker", cwd=REPO), \
                kubernetes_worker(server, gpu_pool, kube, tmp_path / "gpu-worker", cwd=REPO):
            deploy_entrypoint(server, "flows/gpu_trainer.py:gpu_trainer", "pods-test", gpu_pool,
                              REPO, job_variables={"image": "retrain-trainer:test",
                                                   "env": {**shared, **home("trainer-pod")}})
            deploy_entrypoint(server, "flows/training_pipeline.py:training_pipeline",
                              "pods-test", cpu_pool, REPO,
                              job_variables={"image": "retrain-pipeline:test",
                                             "env": {**shared, **home("pipeline-pod")}})
            config = recommender_config(
                "gs://retrain-data/pods", "retrieval", model_name="gcs-pods",
                pipeline_root=ROOT, pusher={"serving_base": f"{ROOT}-serving"},
                training={"epochs": 1, "batch_size": 128, "epoch_eval_rows": 128},
                evaluator={"trivial_baseline": {"enabled": False}},
                beam={"args": ["--direct_running_mode=in_memory"]},
                gpu={"deployment": "gpu-trainer/pods-test"})
            with temporary_settings(updates={PREFECT_API_URL: server}):
                flow_run = run_deployment(
                    "training-pipeline/pods-test", timeout=1500,
                    parameters={"config": config.model_dump(mode="json", by_alias=True)})
                # The next scheduled run, in a new pod with a home (and Prefect storage) of
                # its own: nothing to redo, the stages' markers on the bucket say so.
                rerun = run_deployment(
                    "training-pipeline/pods-test", timeout=900,
                    parameters={"config": config.model_dump(mode="json", by_alias=True)},
                    job_variables={"env": {**shared, **home("next-pipeline-pod")}})
        assert not kube.unhandled, kube.unhandled
        pods = {obj["metadata"]["name"]: obj for _, obj in kube.history("pods")}
        logs = {name: kube.pod_log(name) for name in pods}

    assert flow_run.state.is_completed(), (flow_run.state.message, {
        name: log[-3000:] for name, log in logs.items()})
    assert rerun.state.is_completed(), (rerun.state.message, {
        name: log[-3000:] for name, log in logs.items()})
    images = sorted(pod["spec"]["containers"][0]["image"] for pod in pods.values())
    # a pipeline pod per run; one Trainer pod: the re-run trained nothing
    assert images == ["retrain-pipeline:test"] * 2 + ["retrain-trainer:test"]

    from retrain.store import runs
    from retrain.store.sessions import sessions

    with sessions()() as session:  # the pipeline pod's record, on PostgreSQL
        run = runs.run_for_flow_run(session, str(flow_run.id))
        assert run.status == "completed" and run.registered_version
        assert all(stage.output_uri.startswith(f"{ROOT}/") for stage in run.stages
                   if stage.output_uri)
        assert run.trainer_attempts and run.trainer_attempts[-1].outcome == "succeeded"
        again = runs.run_for_flow_run(session, str(rerun.id))
        assert again.status == "completed"
        assert [stage.status for stage in again.stages] == ["cached"] * 8
        assert again.registered_version == run.registered_version
    names = [b.name for b in gcs.list_blobs("retrain-pipelines", prefix="pods")]
    assert any(name.startswith("pods/gcs-pods/Trainer/") and name.endswith("saved_model.pb")
               for name in names)
    assert any(name.startswith("pods-serving/gcs-pods/") and name.endswith("saved_model.pb")
               for name in names)
    # The registration outlived the pod: the champion, in the MLflow database, and the model
    # files it points to, on the bucket.
    import mlflow

    registry = mlflow.tracking.MlflowClient(tracking_uri=mlflow_db, registry_uri=mlflow_db)
    champion = registry.get_model_version_by_alias("gcs-pods", "champion")
    assert str(champion.version) == run.registered_version
    assert champion.source.startswith("gs://retrain-pipelines/mlflow/")
    assert any(name.startswith("mlflow/") and name.endswith("/model/saved_model.pb")
               for name in (b.name for b in gcs.list_blobs("retrain-pipelines",
                                                           prefix="mlflow/")))
    # No stage output on any local disk (each pod's home included).
    assert not list(tmp_path.glob("**/ExampleGen")) and not list(tmp_path.glob("**/Trainer"))


def test_a_pod_whose_registry_would_go_with_it_refuses_to_run(
        kubernetes_prefect_server, gcs_emulator, postgres_db, tiny_interactions, tmp_path,
        monkeypatch):
    """prefect.yaml's kubernetes deployment with the record on PostgreSQL and the roots on
    gs://, but RETRAIN_MLFLOW_BLOCK left unset: MLflow would be SQLite in the pod's home, and
    the next pod would find no champion to compare with. The run fails before any stage,
    naming MLflow and its settings, and its record on PostgreSQL says so."""
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from retrain.domain.examples import recommender_config
    from retrain.services.database import upgrade_store

    server = kubernetes_prefect_server
    monkeypatch.setenv("RETRAIN_DATABASE_URL", postgres_db)
    upgrade_store()
    env = {"RETRAIN_DATABASE_URL": postgres_db, "PYTHONPATH": str(REPO),
           "HOME": str(tmp_path / "pod"), "RETRAIN_HOME": str(tmp_path / "pod" / "retrain"),
           "RETRAIN_MLFLOW_BLOCK": ""}  # prefect.yaml's "{{ $RETRAIN_MLFLOW_BLOCK }}", unset
    base_env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "LANG": "C.UTF-8"}
    pool = f"retrain-cpu-{uuid.uuid4().hex[:6]}"
    with KubeEmulator(base_env=base_env, workdir=REPO, root=tmp_path / "kube",
                      nodes=[Node(name="gke-cpu-0", labels={}, taints=[], gpus=0)]) as kube:
        create_kubernetes_pool(server, pool, K8S / "pipeline_job_template.json",
                               tmp_path / "pool")
        with kubernetes_worker(server, pool, kube, tmp_path / "worker", cwd=REPO):
            deploy_entrypoint(server, "flows/training_pipeline.py:training_pipeline",
                              "pods-refused", pool, REPO,
                              job_variables={"image": "retrain-pipeline:test", "env": env})
            config = recommender_config(
                "gs://retrain-data/refused", "retrieval", model_name="gcs-pods-refused",
                pipeline_root=f"{ROOT}-refused", pusher={"serving_base": f"{ROOT}-refused"})
            with temporary_settings(updates={PREFECT_API_URL: server}):
                flow_run = run_deployment(
                    "training-pipeline/pods-refused", timeout=600,
                    parameters={"config": config.model_dump(mode="json", by_alias=True)})
        log = "".join(kube.pod_log(name) for _, obj in kube.history("pods")
                      for name in [obj["metadata"]["name"]])

    assert flow_run.state.is_failed(), (flow_run.state, log[-3000:])
    message = flow_run.state.message
    pod_mlflow = tmp_path / "pod" / "retrain" / "mlflow.db"
    assert f"in a container (work pool {pool} (kubernetes))" in message
    assert f"MLflow tracking and registry ({pod_mlflow})" in message
    assert "RETRAIN_MLFLOW_BLOCK" in message and "MLflow artifact root" in message
    assert "run store" not in message and "pipeline root" not in message  # those are kept
    from retrain.store import runs
    from retrain.store.sessions import sessions

    with sessions()() as session:
        run = runs.run_for_flow_run(session, str(flow_run.id))
        assert run.status == "failed" and "MLflow tracking and registry" in run.error_message
        assert [stage.status for stage in run.stages] == ["skipped"] * 8  # none ran
