"""The whole training pipeline on gs://, against the emulated bucket: input data, pipeline
root, serving base and MLflow's artifact root all in the bucket. The Python clients reach the
emulator through a GcsConnection block (RETRAIN_GCS_BLOCK), TensorFlow's GCS file system
through libcurl's proxy settings (gcs_emulator.py).

The run completes and pushes; an identical re-run hits every stage's cache having downloaded
no data and no artifact (inputs are fingerprinted by their objects' checksums, outputs found
by their completion markers' metadata); a changed object re-runs from ExampleGen; `retrain runs delete` removes
that run's artifacts from the bucket and leaves the first run's. A re-run in a process whose
Prefect storage has none of the first run's records (a new pod) is cached from the stages'
completion markers on the bucket."""

from __future__ import annotations

import os
import time

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.service]

STAGES = ["ExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator",
          "Transform", "Trainer", "Evaluator", "Pusher"]
DATA = "gs://retrain-data/interactions"
ROOT = "gs://retrain-pipelines/root"
SERVING = "gs://retrain-pipelines/serving"
MLFLOW = "gs://retrain-pipelines/mlflow"
ENV = ("RETRAIN_GCS_BLOCK", "RETRAIN_MLFLOW_ARTIFACT_ROOT", "STORAGE_EMULATOR_HOST",
       "GOOGLE_CLOUD_PROJECT", "HTTPS_PROXY", "CURL_CA_BUNDLE",
       "NO_PROXY", "GOOGLE_APPLICATION_CREDENTIALS")


def _config(in_memory_beam, **overrides):
    from retrain.domain.examples import recommender_config

    values = {
        "model_name": "gcs-retrieval",
        "pipeline_root": ROOT,
        "pusher": {"serving_base": SERVING},
        "training": {"epochs": 1, "batch_size": 128, "epoch_eval_rows": 128},
        # pushed on the first run: 2,000 rows and one epoch do not beat the most popular
        # products by the default margin
        "evaluator": {"trivial_baseline": {"enabled": False}},
        "beam": in_memory_beam,
    }
    values.update(overrides)
    return recommender_config(DATA, "retrieval", **values)


def _objects(bucket_name: str, prefix: str) -> list[str]:
    from google.cloud import storage

    return sorted(b.name for b in storage.Client().bucket(bucket_name).list_blobs(prefix=prefix))


@pytest.fixture(scope="module")
def on_gcs(prefect_harness, gcs_emulator, tiny_interactions):
    """The emulated bucket holds the input data; RETRAIN_GCS_BLOCK names a block pointing
    at the emulator; MLflow's artifact root is in the bucket."""
    from blocks import GcsConnection

    saved = {name: os.environ.get(name) for name in ENV}
    GcsConnection(service_account_info=gcs_emulator.service_account_key(),
                  endpoint=gcs_emulator.endpoint, project="retrain-tests").save(
        "emulated", overwrite=True)
    os.environ.update({"RETRAIN_GCS_BLOCK": "emulated",
                       "RETRAIN_MLFLOW_ARTIFACT_ROOT": MLFLOW,
                       # for this test's own look at the bucket (the run reads the block)
                       "STORAGE_EMULATOR_HOST": gcs_emulator.endpoint,
                       # TensorFlow's GCS file system has its endpoints compiled in
                       **gcs_emulator.tensorflow_environment()})
    from google.cloud import storage

    bucket = storage.Client(project="retrain-tests").bucket("retrain-data")
    for path in sorted(tiny_interactions.glob("*.csv")):
        bucket.blob(f"interactions/{path.name}").upload_from_filename(str(path))
    yield gcs_emulator
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="module")
def first_run(on_gcs, in_memory_beam):
    from flows.training_pipeline import training_pipeline

    started = time.monotonic()
    state = training_pipeline(_config(in_memory_beam), return_state=True)
    assert state.is_completed() and state.name == "Completed", state.message
    print(f"\nfirst gs:// run: {time.monotonic() - started:.1f} s; " + ", ".join(
        f"{t.stage} {t.seconds:.1f} s" for t in state.result().stages))
    return state.result(), _stage_outputs(state.state_details.flow_run_id)[1]


def _stage_outputs(flow_run_id) -> tuple[str, list[str]]:
    """The run's id and its stages' output URIs, from the state store."""
    from retrain.store import runs
    from retrain.store.sessions import sessions

    with sessions()() as session:
        run = runs.run_for_flow_run(session, str(flow_run_id))
        return run.id, [stage.output_uri for stage in run.stages if stage.output_uri]


def test_the_run_reads_writes_and_pushes_on_the_bucket(first_run):
    from retrain.adapters import mlflow_registry as registry

    summary, outputs = first_run
    assert len(outputs) == len(STAGES) and all(uri.startswith(f"{ROOT}/") for uri in outputs)
    assert [t.state for t in summary.stages] == ["Completed"] * len(STAGES)
    assert summary.outcome == "pushed"
    assert summary.push.serving_uri.startswith(f"{SERVING}/gcs-retrieval/")
    version = summary.push.serving_uri.removeprefix("gs://retrain-pipelines/")
    assert f"{version}/saved_model.pb" in _objects("retrain-pipelines", version)
    root = _objects("retrain-pipelines", "root/gcs-retrieval/")
    for stage in STAGES:
        assert sum(name.startswith(f"root/gcs-retrieval/{stage}/")
                   and name.endswith("/_COMPLETE.json") for name in root) == 1, stage
    assert any("/Trainer/" in name and name.endswith("saved_model.pb") for name in root)
    run = registry.client().get_run(summary.push.mlflow_run_id)
    assert run.info.artifact_uri.startswith(f"{MLFLOW}/")
    assert any(name.endswith("/artifacts/model/saved_model.pb")
               for name in _objects("retrain-pipelines", "mlflow/"))


def test_an_identical_rerun_hits_every_cache_downloading_no_data(
        first_run, on_gcs, in_memory_beam):
    from flows.training_pipeline import training_pipeline

    on_gcs.reset_stats()
    started = time.monotonic()
    summary = training_pipeline(_config(in_memory_beam))
    seconds = time.monotonic() - started
    assert [t.state for t in summary.stages] == ["Cached"] * len(STAGES)
    assert summary.push.registered_version == first_run[0].push.registered_version
    stats = on_gcs.stats()
    downloads = {key.removeprefix("download:"): size for key, size in stats.items()
                 if key.startswith("download:")}
    # Caching looks at metadata only: at most a stage's completion marker is read.
    assert all(name.endswith("/_COMPLETE.json") for name in downloads), downloads
    print(f"\ncached gs:// re-run: {seconds:.1f} s, {stats.get('media_bytes', 0)} bytes "
          f"downloaded in {len(downloads)} objects, {stats.get('GET', 0)} GET requests")


def test_a_rerun_on_a_machine_without_prefects_records_is_cached_from_the_markers(
        first_run, on_gcs, in_memory_beam, tmp_path):
    """A new pod shares the bucket but not the Prefect storage of the one that ran the
    stages: each stage's marker on the bucket makes its cache record there."""
    from prefect.settings import PREFECT_RESULTS_LOCAL_STORAGE_PATH, temporary_settings

    from flows.training_pipeline import training_pipeline

    on_gcs.reset_stats()
    with temporary_settings({PREFECT_RESULTS_LOCAL_STORAGE_PATH: tmp_path / "new-pod"}):
        summary = training_pipeline(_config(in_memory_beam))
    assert [t.state for t in summary.stages] == ["Cached"] * len(STAGES)
    assert summary.push.registered_version == first_run[0].push.registered_version
    downloads = [key.removeprefix("download:") for key in on_gcs.stats()
                 if key.startswith("download:")]
    assert sorted(name.rsplit("/", 3)[1] for name in downloads) == sorted(STAGES), downloads
    assert all(name.endswith("/_COMPLETE.json") for name in downloads), downloads


def test_a_changed_object_reruns_from_example_gen_and_its_run_can_be_deleted(
        first_run, on_gcs, in_memory_beam, tiny_interactions, capsys):
    from google.cloud import storage

    from flows.cli.main import main
    from flows.training_pipeline import training_pipeline

    name = sorted(tiny_interactions.glob("*.csv"))[0].name
    blob = storage.Client().bucket("retrain-data").blob(f"interactions/{name}")
    lines = blob.download_as_text().splitlines(keepends=True)
    blob.upload_from_string("".join(lines[:-50]))  # the same name, 50 rows fewer

    # Default trivial baseline: not blessed, so not pushed (a champion cannot be deleted).
    state = training_pipeline(_config(in_memory_beam, evaluator={}), return_state=True)
    summary = state.result()
    assert [t.state for t in summary.stages] == ["Completed"] * len(STAGES)
    assert sum(summary.rows.values()) == 2_000 - 50
    run_id, outputs = _stage_outputs(state.state_details.flow_run_id)
    assert len(outputs) == len(STAGES) and all(uri.startswith(f"{ROOT}/") for uri in outputs)
    first_outputs = set(first_run[1])
    assert not first_outputs & set(outputs)

    assert main(["runs", "delete", run_id, "--yes"]) == 0
    left = _objects("retrain-pipelines", "root/")
    for uri in outputs:
        prefix = uri.removeprefix("gs://retrain-pipelines/") + "/"
        assert not any(name.startswith(prefix) for name in left), uri
    for uri in first_outputs:
        prefix = uri.removeprefix("gs://retrain-pipelines/") + "/"
        assert any(name.startswith(prefix) for name in left), uri
    assert "deleted" in capsys.readouterr().out
