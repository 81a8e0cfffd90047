"""Which stores a run in a container (a Kubernetes pod) would lose with it."""

from __future__ import annotations

import pytest

from retrain.domain.durability import Store, local_path, lost_with_container, refusal


@pytest.mark.parametrize("location, path", [
    ("/opt/retrain/.retrain/pipelines", "/opt/retrain/.retrain/pipelines"),
    ("relative/dir", "relative/dir"),
    ("sqlite:////opt/retrain/.retrain/state.db", "/opt/retrain/.retrain/state.db"),
    ("sqlite+pysqlite:///state.db", "state.db"),
    ("sqlite://", ":memory:"),
    ("file:///mnt/mlruns", "/mnt/mlruns"),
    ("file:/mnt/mlruns", "/mnt/mlruns"),
    ("gs://bucket/root", None),
    ("s3://bucket/root", None),
    ("https://mlflow.example.com", None),
    ("postgresql+psycopg://retrain@db/retrain", None),
    ("databricks", None),  # MLflow's hosted servers
    ("databricks://profile", None),
])
def test_a_location_is_local_when_it_names_this_machines_disk(location, path):
    assert local_path(location) == path


def test_local_stores_are_lost_unless_under_a_volume_the_pod_keeps():
    locations = {Store.RUN_STORE: "sqlite:////data/retrain/state.db",
                 Store.MLFLOW_TRACKING: "https://mlflow.example.com",
                 Store.MLFLOW_ARTIFACTS: None,  # the server's own store
                 Store.PIPELINE_ROOT: "/data/retrain-pipelines",  # not under /data/retrain
                 Store.SERVING_BASE: "gs://models/serving"}
    lost = lost_with_container(locations)
    assert [(s.store, s.path) for s in lost] == [
        (Store.RUN_STORE, "/data/retrain/state.db"),
        (Store.PIPELINE_ROOT, "/data/retrain-pipelines")]
    kept = lost_with_container(locations, ["/data/retrain", ""])
    assert [s.store for s in kept] == [Store.PIPELINE_ROOT]
    assert lost_with_container(locations, ["/data/retrain", "/data/retrain-pipelines"]) == []
    # A relative path is wherever the pod starts: never on a named volume.
    assert lost_with_container({Store.PIPELINE_ROOT: "data/retrain/x"}, ["/data/retrain"])


def test_the_refusal_names_each_store_its_path_and_its_setting():
    message = refusal("work pool retrain-cpu (kubernetes)", lost_with_container(
        {Store.RUN_STORE: "sqlite:////home/r/state.db",
         Store.MLFLOW_TRACKING: "sqlite:////home/r/mlflow.db"}))
    assert message.startswith("this run is in a container (work pool retrain-cpu (kubernetes))")
    assert "the run store (/home/r/state.db): set RETRAIN_DATABASE_URL" in message
    assert "the MLflow tracking and registry (/home/r/mlflow.db): set RETRAIN_MLFLOW_BLOCK" in message
    assert "Nothing was run" in message and "RETRAIN_PERSISTENT_VOLUMES" in message
