"""What stops a run on gs:// is one line at ExampleGen, before any stage works: no
credentials (within 10 s, naming the buckets and how to provide credentials), a missing
bucket, no objects under the input, a refused permission (the emulator answering 403 as GCS
does). Each location is asked once: nothing is retried; nothing is written or pushed."""

from __future__ import annotations

import os

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.service]

ENV = ("RETRAIN_GCS_BLOCK", "STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS",
       "GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CONFIG", "HTTPS_PROXY", "CURL_CA_BUNDLE", "NO_PROXY")


@pytest.fixture
def environment():
    """Restore the GCS environment each case changes."""
    saved = {name: os.environ.get(name) for name in ENV}
    for name in ENV:
        os.environ.pop(name, None)
    yield os.environ
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _run(in_memory_beam, tmp_path, data: str, root: str = "gs://retrain-pipelines/errors"):
    from flows.training_pipeline import training_pipeline
    from retrain.domain.examples import recommender_config

    config = recommender_config(data, "retrieval", model_name="gcs-errors",
                                pipeline_root=root,
                                pusher={"serving_base": str(tmp_path / "serving")},
                                beam=in_memory_beam)
    state = training_pipeline(config, return_state=True)
    assert state.is_failed()
    assert not (tmp_path / "serving").exists()
    return _record(state)


def _record(state):
    """(error stage, error message, the stage's seconds) from the state store."""
    from retrain.store import runs
    from retrain.store.sessions import sessions

    with sessions()() as session:
        run = runs.run_for_flow_run(session, str(state.state_details.flow_run_id))
        assert run.status == "failed"
        stage = next(s for s in run.stages if s.stage == run.error_stage)
        assert f"{run.error_stage} failed: {stage.message}" in run.error_message
        assert all(s.status == "skipped" for s in run.stages[1:])
        return run.error_stage, stage.message, stage.seconds


def test_no_credentials_is_one_message_within_ten_seconds(
        prefect_harness, in_memory_beam, tmp_path, environment):
    environment["CLOUDSDK_CONFIG"] = str(tmp_path / "no-gcloud")  # no gcloud ADC login
    stage, message, seconds = _run(in_memory_beam, tmp_path, "gs://retrain-data/interactions")
    assert stage == "ExampleGen"
    assert message == (
        "no Google Cloud credentials to read gs://retrain-data, gs://retrain-pipelines: set "
        "RETRAIN_GCS_BLOCK to a retrain-gcs block holding a service-account key (Prefect UI: "
        "Blocks), or GOOGLE_APPLICATION_CREDENTIALS to a key file, or run `gcloud auth "
        "application-default login` (Application Default Credentials)")
    assert seconds < 10


@pytest.mark.parametrize("data, expected", [
    ("gs://no-such-bucket/interactions",
     "input.uri gs://no-such-bucket/interactions: bucket gs://no-such-bucket does not exist"),
    ("gs://retrain-data/no-such-folder",
     "input.uri gs://retrain-data/no-such-folder: no objects under it"),
])
def test_a_missing_bucket_or_object_is_named(
        prefect_harness, gcs_emulator, in_memory_beam, tmp_path, environment, data, expected):
    environment["STORAGE_EMULATOR_HOST"] = gcs_emulator.endpoint
    bucket = data.removeprefix("gs://").split("/")[0]
    before = gcs_emulator.stats().get(f"list:{bucket}/{data.split('/', 3)[3]}/", 0)
    stage, message, _ = _run(in_memory_beam, tmp_path, data)
    assert (stage, message) == ("ExampleGen", expected)
    # asked once, not retried
    assert gcs_emulator.stats()[f"list:{bucket}/{data.split('/', 3)[3]}/"] == before + 1


def test_a_refused_permission_is_named_and_not_retried(
        prefect_harness, gcs_emulator, in_memory_beam, tmp_path, environment):
    from google.cloud import storage

    environment["STORAGE_EMULATOR_HOST"] = gcs_emulator.endpoint
    storage.Client.create_anonymous_client().bucket("retrain-data").blob(
        "permission/part-0.csv").upload_from_string("buyer_id,product_id\nb1,p1\n")
    gcs_emulator.deny("retrain-locked")
    try:
        stage, message, _ = _run(in_memory_beam, tmp_path, "gs://retrain-data/permission",
                                 root="gs://retrain-locked/root")
        assert stage == "ExampleGen"
        assert message.startswith(
            "pipeline_root gs://retrain-locked/root: these credentials may not list "
            "gs://retrain-locked (caller does not have storage.objects.list access")
        assert "grant it roles/storage.objectAdmin on the bucket" in message
        assert gcs_emulator.stats()["list:retrain-locked/root/"] == 1  # not retried
    finally:
        gcs_emulator.allow("retrain-locked")
