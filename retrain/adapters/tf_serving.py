"""The serving directory as TF Serving reads it: numbered version directories under
`<serving_base>/<model>/`, and the `models.config` beside them that says which one serves.

TF Serving started with `--model_base_path` alone serves the highest version number, so
going back to an older version needs more than files: started with
`--model_config_file=<serving_base>/<model>/models.config` (and
`--model_config_file_poll_wait_seconds`), it serves exactly what this file names, a
`specific` version policy, and unloads the model when the list is empty. The file is
TF Serving's own `ModelServerConfig` text format, written with its protos and replaced
whole (a rename on a local disk; one object write on gs://), so a poll never reads half.
"""

from __future__ import annotations

import os
import uuid

from retrain.domain.serving import (
    CONFIG_FILE,
    ServedModel,
    VersionPolicy,
    numeric_versions,
    selected_versions,
)


def _fs(uri: str):
    import fsspec

    return fsspec.core.url_to_fs(uri)


def model_dir_of(version_dir: str) -> str:
    """`<serving_base>/<model>` of a pushed `<serving_base>/<model>/<version>` directory."""
    return version_dir.rstrip("/").rsplit("/", 1)[0]


def _absolute(path: str) -> str:
    return path if "://" in path else os.path.abspath(path)


def config_text(model_name: str, model_dir: str, version: int | None) -> str:
    """`models.config` serving `version` of `model_name` from `model_dir`, or nothing."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    config.model_config_list.SetInParent()  # an empty list still says "serve nothing"
    if version is not None:
        entry = config.model_config_list.config.add()
        entry.name = model_name
        entry.base_path = _absolute(model_dir)
        entry.model_platform = "tensorflow"
        entry.model_version_policy.specific.versions.append(version)
    return text_format.MessageToString(config)


def write_config(model_name: str, model_dir: str, version: int | None) -> str:
    """Replace `<model_dir>/models.config` so TF Serving serves `version` (None: nothing);
    returns the file's path."""
    fs, base = _fs(model_dir)
    path = f"{base.rstrip('/')}/{CONFIG_FILE}"
    staging = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
    fs.makedirs(base, exist_ok=True)
    fs.pipe_file(staging, config_text(model_name, model_dir, version).encode())
    fs.mv(staging, path)
    return f"{model_dir.rstrip('/')}/{CONFIG_FILE}"


def read_config(model_name: str, model_dir: str) -> tuple[bool, ServedModel | None]:
    """Whether `models.config` exists, and its entry for `model_name` (None if it lists
    no such model)."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    fs, base = _fs(model_dir)
    path = f"{base.rstrip('/')}/{CONFIG_FILE}"
    if not fs.exists(path):
        return False, None
    config = text_format.Parse(fs.cat_file(path).decode(),
                               model_server_config_pb2.ModelServerConfig())
    for entry in config.model_config_list.config:
        if entry.name != model_name:
            continue
        policy = entry.model_version_policy.WhichOneof("policy_choice")
        return True, ServedModel(
            name=entry.name, base_path=entry.base_path,
            policy=VersionPolicy(policy or VersionPolicy.LATEST.value),
            versions=list(entry.model_version_policy.specific.versions),
            num_versions=entry.model_version_policy.latest.num_versions or 1,
        )
    return True, None


def version_dirs(model_dir: str) -> list[int]:
    """The numbered version directories under `model_dir` (none if it does not exist)."""
    fs, base = _fs(model_dir)
    if not fs.exists(base):
        return []
    return numeric_versions(entry["name"].rstrip("/").rsplit("/", 1)[-1]
                            for entry in fs.ls(base, detail=True)
                            if entry["type"] == "directory")


def served_versions(model_name: str, model_dir: str) -> list[int]:
    """What TF Serving would load for `model_name` from `model_dir`: by `models.config` when
    it is there, else by its default policy (the highest version)."""
    exists, entry = read_config(model_name, model_dir)
    if not exists:
        entry = ServedModel(name=model_name, base_path=model_dir)
    return selected_versions(entry, version_dirs(model_dir))
