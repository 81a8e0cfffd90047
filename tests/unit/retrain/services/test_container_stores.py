"""A run a worker started in a container refuses to start while a store would be deleted
with it; outside a container, or with every store remote, it starts as before."""

from __future__ import annotations

import uuid

import pytest

from retrain.domain.examples import recommender_config
from retrain.services.durability import check_stores, container_of
from retrain.services.errors import StoresInContainer
from retrain.settings import get_settings

POD = "work pool retrain-cpu (kubernetes)"
REMOTE = {"RETRAIN_DATABASE_URL": "postgresql+psycopg://retrain@db.internal/retrain",
          "RETRAIN_MLFLOW_TRACKING_URI": "https://mlflow.internal"}


@pytest.fixture
def settings(monkeypatch, tmp_path):
    """The image's settings: its own home, nothing else set; yields a setter."""
    monkeypatch.setenv("RETRAIN_HOME", str(tmp_path / "home"))
    for name in ("RETRAIN_DATABASE_URL", "RETRAIN_MLFLOW_TRACKING_URI",
                 "RETRAIN_MLFLOW_ARTIFACT_ROOT", "RETRAIN_PERSISTENT_VOLUMES",
                 "RETRAIN_PIPELINE_ROOT", "RETRAIN_SERVING_BASE", "RETRAIN_MLFLOW_BLOCK"):
        monkeypatch.delenv(name, raising=False)

    def setter(**env: str) -> None:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    setter()
    yield setter
    get_settings.cache_clear()


def config(root: str = "gs://pipelines/root", serving: str = "gs://models/serving"):
    return recommender_config("gs://data/x", pipeline_root=root, pusher={"serving_base": serving})


def test_the_embedded_defaults_in_a_container_are_refused_naming_every_store(
        settings, tmp_path):
    home = tmp_path / "home"
    with pytest.raises(StoresInContainer) as refused:
        check_stores(recommender_config("gs://data/x"), POD)  # roots from the settings: home
    message = str(refused.value)
    assert message.startswith(f"this run is in a container ({POD})")
    for store, path in [("run store", home / "state.db"),
                        ("MLflow tracking and registry", home / "mlflow.db"),
                        ("MLflow artifact root", home / "mlartifacts"),
                        ("pipeline root", home / "pipelines"),
                        ("serving base", home / "serving")]:
        assert f"the {store} ({path.absolute()})" in message


def test_remote_stores_pass_and_an_mlflow_server_keeps_its_own_artifacts(settings):
    settings(**REMOTE)
    assert get_settings().resolved_mlflow_artifact_root() is None  # the server's default
    check_stores(config(), POD)


def test_an_mlflow_database_needs_an_artifact_root_off_the_container(settings):
    settings(RETRAIN_DATABASE_URL=REMOTE["RETRAIN_DATABASE_URL"],
             RETRAIN_MLFLOW_TRACKING_URI="postgresql+psycopg://mlflow@db.internal/mlflow")
    with pytest.raises(StoresInContainer, match=r"^[^;]*the MLflow artifact root \(.*mlartifacts"
                       r"\): set the MLflow block's artifact_root[^;]*$"):
        check_stores(config(), POD)
    settings(RETRAIN_MLFLOW_ARTIFACT_ROOT="gs://models/mlartifacts")
    check_stores(config(), POD)


def test_a_trainer_container_checks_only_what_it_writes(settings):
    settings(RETRAIN_DATABASE_URL=REMOTE["RETRAIN_DATABASE_URL"])  # MLflow: the default
    check_stores(config(), POD, registers=False)
    with pytest.raises(StoresInContainer, match=r"pipeline root \(/tmp/pipelines\)"):
        check_stores(config(root="/tmp/pipelines"), POD, registers=False)


def test_local_stores_on_a_volume_the_container_keeps_pass(settings, tmp_path):
    settings(RETRAIN_PERSISTENT_VOLUMES=f"/mnt/other:{tmp_path}")
    check_stores(config(root=str(tmp_path / "pipelines"), serving=str(tmp_path / "serving")),
                 POD)


def test_outside_a_container_nothing_is_checked(settings):
    check_stores(recommender_config("gs://data/x"), None)


def test_a_flow_run_is_in_a_container_when_its_work_pool_starts_one(prefect_harness):
    """From the Prefect API: flow runs of deployments on a kubernetes, a docker and a process
    pool, and one no worker started."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    suffix = uuid.uuid4().hex[:6]
    runs = {}
    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name(f"stores-{suffix}")
        for kind in ("kubernetes", "docker", "process"):
            pool = f"{kind}-{suffix}"
            client.create_work_pool(WorkPoolCreate(name=pool, type=kind))
            deployment = client.create_deployment(flow_id=flow_id, name=pool,
                                                  work_pool_name=pool)
            runs[kind] = client.create_flow_run_from_deployment(deployment).id
        runs["no pool"] = client.create_flow_run(flow(name=f"stores-{suffix}")(lambda: None)).id
    assert container_of(runs["kubernetes"]) == f"work pool kubernetes-{suffix} (kubernetes)"
    assert container_of(runs["docker"]) == f"work pool docker-{suffix} (docker)"
    assert container_of(runs["process"]) is None
    assert container_of(runs["no pool"]) is None  # a flow called in process, a test
    assert container_of(None) is None
