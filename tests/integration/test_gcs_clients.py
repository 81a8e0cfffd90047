"""Every GCS client of the pipeline reaches the emulated bucket by configuration only: the
Python clients through a GcsConnection block's endpoint (STORAGE_EMULATOR_HOST), TensorFlow's
own GCS file system (endpoints compiled in) through libcurl's HTTPS_PROXY and CURL_CA_BUNDLE
(gcs_emulator.py). Each writes what the pipeline writes with it and reads it back, and the
objects are really in the emulator."""

from __future__ import annotations

import os

import pytest

pytestmark = [pytest.mark.service]

ENV = ("STORAGE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT", "GOOGLE_APPLICATION_CREDENTIALS",
       "HTTPS_PROXY", "CURL_CA_BUNDLE", "NO_PROXY")


@pytest.fixture(scope="module")
def bucket(gcs_emulator):
    """The emulator's `retrain-data` bucket, this process pointed at it through a block's
    environment; yields a google-cloud-storage Bucket to look at what the clients wrote."""
    from blocks import GcsConnection
    from retrain.settings import apply_gcs_connection

    saved = {name: os.environ.get(name) for name in ENV}
    os.environ.update(GcsConnection(
        service_account_info=gcs_emulator.service_account_key(), endpoint=gcs_emulator.endpoint,
        project="retrain-tests").environment())
    os.environ.update(gcs_emulator.tensorflow_environment())
    apply_gcs_connection()
    from google.cloud import storage

    yield storage.Client().bucket("retrain-data")
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _names(bucket, prefix: str) -> list[str]:
    return sorted(blob.name for blob in bucket.list_blobs(prefix=prefix))


def test_gcsfs_lists_reads_and_fingerprints_without_downloading(bucket, gcs_emulator):
    import fsspec

    with fsspec.open("gs://retrain-data/gcsfs/part-1.csv", "w") as handle:
        handle.write("a,b\n1,2\n")
    fs, path = fsspec.core.url_to_fs("gs://retrain-data/gcsfs")
    assert fs.ls(path) == ["retrain-data/gcsfs/part-1.csv"]
    with fsspec.open("gs://retrain-data/gcsfs/part-1.csv", "r") as handle:
        assert handle.read() == "a,b\n1,2\n"
    gcs_emulator.reset_stats()
    blob = bucket.get_blob("gcsfs/part-1.csv")
    fs.invalidate_cache()
    assert fs.ukey("retrain-data/gcsfs/part-1.csv")  # the object's checksums, not its bytes
    assert gcs_emulator.stats().get("media_bytes", 0) == 0
    assert blob.size == 8 and blob.md5_hash


def test_tensorflow_under_tfx_fileio_writes_directories_records_and_saved_models(bucket):
    """TensorFlow's built-in GCS file system, as TFX, TFDV and tf.Transform use it: a
    directory renamed whole (tf.Transform publishes its outputs so), records, SavedModels."""
    from retrain.adapters.tfx import prepare_tf_environment

    prepare_tf_environment()
    import tensorflow as tf
    from tfx.dsl.io import fileio

    root = "gs://retrain-data/tf"
    fileio.makedirs(f"{root}/Split-train")
    with fileio.open(f"{root}/Split-train/data.txt", "w") as handle:
        handle.write("hello")
    fileio.rename(f"{root}/Split-train", f"{root}/published")
    assert fileio.glob(f"{root}/published/*") == [f"{root}/published/data.txt"]
    assert fileio.isdir(f"{root}/published") and not fileio.exists(f"{root}/Split-train")
    with fileio.open(f"{root}/published/data.txt") as handle:
        assert handle.read() == "hello"

    with tf.io.TFRecordWriter(f"{root}/records.tfrecord") as writer:
        for value in (b"one", b"two"):
            writer.write(value)
    assert list(tf.data.TFRecordDataset(f"{root}/records.tfrecord").as_numpy_iterator()) == [
        b"one", b"two"]

    module = tf.Module()
    module.scale = tf.Variable(3.0)
    module.call = tf.function(lambda x: x * module.scale,
                              input_signature=[tf.TensorSpec([], tf.float32)])
    tf.saved_model.save(module, f"{root}/model/1")
    loaded = tf.saved_model.load(f"{root}/model/1")
    assert float(loaded.call(tf.constant(2.0))) == 6.0
    fileio.rmtree(f"{root}/model")
    assert not fileio.exists(f"{root}/model/1/saved_model.pb")

    names = _names(bucket, "tf/")
    assert "tf/published/data.txt" in names and "tf/records.tfrecord" in names
    assert not any(name.startswith("tf/model/") for name in names)


def test_beam_writes_and_reads_text_on_gs(bucket, in_memory_beam):
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    options = PipelineOptions(in_memory_beam["args"])
    with beam.Pipeline(options=options) as pipeline:
        _ = (pipeline | beam.Create(["x", "y"])
             | beam.io.WriteToText("gs://retrain-data/beam/out", shard_name_template=""))
    assert bucket.blob("beam/out").download_as_text().split() == ["x", "y"]
    with beam.Pipeline(options=options) as pipeline:
        _ = (pipeline | beam.io.ReadFromText("gs://retrain-data/beam/out")
             | beam.Map(str.upper)
             | beam.io.WriteToText("gs://retrain-data/beam/upper", shard_name_template=""))
    assert sorted(bucket.blob("beam/upper").download_as_text().split()) == ["X", "Y"]


def test_mlflow_stores_and_fetches_run_artifacts_on_gs(bucket, tmp_path):
    import mlflow

    client = mlflow.tracking.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment(
        "gcs-artifacts", artifact_location="gs://retrain-data/mlflow")
    run = client.create_run(experiment)
    (tmp_path / "card.md").write_text("# model card\n")
    client.log_artifact(run.info.run_id, str(tmp_path / "card.md"))
    fetched = client.download_artifacts(run.info.run_id, "card.md", str(tmp_path / "back"))
    assert open(fetched).read() == "# model card\n"
    assert f"mlflow/{run.info.run_id}/artifacts/card.md" in _names(bucket, "mlflow/")
