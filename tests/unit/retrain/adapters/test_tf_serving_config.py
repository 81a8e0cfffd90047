"""models.config as TF Serving reads it: written with its protos, parsed back, and what
its version policy would load from the directories on disk."""

from __future__ import annotations

from pathlib import Path

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from retrain.adapters import tf_serving


def _versions(model_dir: Path, *stamps: int) -> None:
    for stamp in stamps:
        (model_dir / str(stamp)).mkdir(parents=True)
        (model_dir / str(stamp) / "saved_model.pb").write_bytes(b"")


def test_without_a_config_tf_serving_serves_the_highest_version(tmp_path):
    _versions(tmp_path / "m", 100, 300, 200)
    assert tf_serving.served_versions("m", str(tmp_path / "m")) == [300]


def test_a_specific_policy_serves_an_older_version(tmp_path):
    model_dir = tmp_path / "m"
    _versions(model_dir, 100, 200, 300)
    path = tf_serving.write_config("m", str(model_dir), 200)
    assert path == f"{model_dir}/models.config"
    # TF Serving's own parser reads it: one model, its base path, the specific version
    config = text_format.Parse(Path(path).read_text(), model_server_config_pb2.ModelServerConfig())
    (entry,) = config.model_config_list.config
    assert (entry.name, entry.base_path, entry.model_platform) == ("m", str(model_dir),
                                                                    "tensorflow")
    assert list(entry.model_version_policy.specific.versions) == [200]
    assert tf_serving.served_versions("m", str(model_dir)) == [200]
    assert tf_serving.version_dirs(str(model_dir)) == [100, 200, 300]  # the file is no version
    assert not list(model_dir.glob("*.tmp"))


def test_an_empty_list_serves_nothing(tmp_path):
    model_dir = tmp_path / "m"
    _versions(model_dir, 100)
    tf_serving.write_config("m", str(model_dir), None)
    assert tf_serving.read_config("m", str(model_dir)) == (True, None)
    assert tf_serving.served_versions("m", str(model_dir)) == []
    assert "model_config_list" in (model_dir / "models.config").read_text()


def test_a_relative_serving_base_is_written_as_an_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _versions(tmp_path / "serving" / "m", 5)
    tf_serving.write_config("m", "serving/m", 5)
    exists, entry = tf_serving.read_config("m", "serving/m")
    assert exists and entry.base_path == str(tmp_path / "serving" / "m")


def test_model_dir_of_a_pushed_version():
    assert tf_serving.model_dir_of("gs://b/serving/m/1764950000/") == "gs://b/serving/m"
