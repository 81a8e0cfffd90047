"""Running a real TFX component executor on artifacts named by reference.

This is the only module that sets TensorFlow environment quirks, and the only one that
instantiates executors. Everything here imports TFX lazily, inside functions.
"""

from __future__ import annotations

import os
import uuid
from typing import Any, Mapping, Sequence

from retrain.domain.refs import ArtifactRef

# Keras 2 (tf-keras): TFX 1.16 user modules and TensorFlow Recommenders need it.
# gs:// stays on TensorFlow's built-in GCS file system. tensorflow-io's (TF_USE_MODULAR_
# FILESYSTEM=1) could be pointed at another endpoint, but renames one object only where
# tf.Transform renames directories (its outputs fail to publish), crashes the process when one
# of its GCS_* settings is unset, and with its block cache off copies a whole block into the
# caller's smaller buffer.
_TF_ENV = {
    "TF_USE_LEGACY_KERAS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "2",
}


def prepare_tf_environment() -> None:
    """Set the env TensorFlow reads at import; Beam worker processes inherit it."""
    for key, value in _TF_ENV.items():
        os.environ.setdefault(key, value)


def _import_class(path: str) -> type:
    import importlib

    module_name, _, class_name = path.rpartition(".")
    return getattr(importlib.import_module(module_name), class_name)


def run_executor(
    executor_class: str,
    inputs: Mapping[str, ArtifactRef | Sequence[ArtifactRef] | None],
    outputs: Mapping[str, str],
    exec_properties: Mapping[str, Any],
    output_dir: str,
    beam_args: Sequence[str] = (),
) -> dict[str, ArtifactRef]:
    """Run one TFX executor and return its output artifacts by reference.

    `outputs` maps TFX output keys to standard artifact type names; each output is written
    to `<output_dir>/<key>`. `output_dir` is emptied first, so a re-run never mixes old and
    new files. Beam-based executors get `beam_args` as their beam_pipeline_args.
    """
    prepare_tf_environment()
    from tfx.dsl.components.base import base_beam_executor, base_executor
    from tfx.dsl.io import fileio
    from tfx.types import standard_artifacts

    if fileio.exists(output_dir):
        fileio.rmtree(output_dir)
    fileio.makedirs(output_dir)

    input_dict: dict[str, list[Any]] = {}
    for key, value in inputs.items():
        if value is None:
            continue
        refs = [value] if isinstance(value, ArtifactRef) else list(value)
        input_dict[key] = [ref.to_tfx() for ref in refs]

    output_dict: dict[str, list[Any]] = {}
    for key, type_name in outputs.items():
        artifact = getattr(standard_artifacts, type_name)()
        artifact.uri = f"{output_dir.rstrip('/')}/{key}"
        fileio.makedirs(artifact.uri)
        output_dict[key] = [artifact]

    cls = _import_class(executor_class)
    tmp_dir = f"{output_dir.rstrip('/')}/.temp"
    unique_id = uuid.uuid4().hex[:12]
    if issubclass(cls, base_beam_executor.BaseBeamExecutor):
        context = base_beam_executor.BaseBeamExecutor.Context(
            beam_pipeline_args=list(beam_args), tmp_dir=tmp_dir, unique_id=unique_id
        )
    else:
        context = base_executor.BaseExecutor.Context(tmp_dir=tmp_dir, unique_id=unique_id)
    executor = cls(context=context)
    executor.Do(input_dict, output_dict, dict(exec_properties))

    if fileio.exists(tmp_dir):
        fileio.rmtree(tmp_dir)
    return {key: ArtifactRef.from_tfx(arts[0]) for key, arts in output_dict.items()}


def proto_json(message: Any) -> str:
    """Serialise a proto the way TFX hands proto exec properties to executors."""
    from tfx.utils import proto_utils

    return proto_utils.proto_to_json(message)


def package_user_module(module_file: str, pipeline_root: str, stage: str) -> str:
    """Package a user module file as TFX does and return its `module_path` exec property.

    TFX builds a wheel of the module's directory (every .py file beside it) and installs it
    with pip in the executor, so Beam worker processes can import the user's functions.
    """
    from tfx.components.util import udf_utils

    _, module_path = udf_utils.package_user_module_file(stage, module_file, pipeline_root)
    return module_path
