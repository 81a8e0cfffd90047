"""What a SavedModel declares: its signatures and its trainable parameter count.

Both are read from the SavedModel's `saved_model.pb` (signature defs and the object graph)
through `tf.io.gfile`, so a local path and gs:// work alike and nothing is restored: no
variable is read and no function is traced, which matters for models with large embedding
tables. The signatures are the ones `tf.saved_model.load(...).signatures` lists.
"""

from __future__ import annotations

import math
from typing import Any

from retrain.adapters.tfx import prepare_tf_environment
from retrain.domain.publication import Signature, TensorSpec

# Signature defs TensorFlow writes for itself (the init op), not callable signatures.
_INTERNAL_SIGNATURE_PREFIX = "__"


def _saved_model_proto(saved_model_dir: str) -> Any:
    """The parsed `saved_model.pb` (or `.pbtxt`) of `saved_model_dir`."""
    prepare_tf_environment()
    import tensorflow as tf
    from google.protobuf import text_format
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    base = saved_model_dir.rstrip("/")
    binary, text = f"{base}/saved_model.pb", f"{base}/saved_model.pbtxt"
    if tf.io.gfile.exists(binary):
        with tf.io.gfile.GFile(binary, "rb") as handle:
            proto.ParseFromString(handle.read())
    elif tf.io.gfile.exists(text):
        with tf.io.gfile.GFile(text, "r") as handle:
            text_format.Parse(handle.read(), proto)
    else:
        raise FileNotFoundError(f"no saved_model.pb in {saved_model_dir}")
    if not proto.meta_graphs:
        raise ValueError(f"{saved_model_dir}: the SavedModel has no MetaGraph")
    return proto


def _tensor_spec(name: str, info: Any) -> TensorSpec:
    """A TensorSpec from a signature def's TensorInfo."""
    import tensorflow as tf

    dtype = tf.as_dtype(info.dtype).name if info.dtype else "composite"
    shape = tf.TensorShape(info.tensor_shape)
    return TensorSpec(name=name, dtype=dtype,
                      shape=None if shape.rank is None else shape.as_list())


def read_signatures(saved_model_dir: str) -> list[Signature]:
    """The SavedModel's signatures, sorted by name; inputs and outputs sorted by name."""
    meta_graph = _saved_model_proto(saved_model_dir).meta_graphs[0]
    return [
        Signature(
            name=name,
            inputs=[_tensor_spec(key, info) for key, info in sorted(definition.inputs.items())],
            outputs=[_tensor_spec(key, info) for key, info in sorted(definition.outputs.items())],
        )
        for name, definition in sorted(meta_graph.signature_def.items())
        if not name.startswith(_INTERNAL_SIGNATURE_PREFIX)
    ]


def count_parameters(saved_model_dir: str) -> int | None:
    """Sum of the sizes of the SavedModel's trainable variables.

    None when the SavedModel has no TF2 object graph (a TF1 export) or a trainable variable
    of unknown shape: then the count is not known without running the model.
    """
    nodes = _saved_model_proto(saved_model_dir).meta_graphs[0].object_graph_def.nodes
    if not nodes:
        return None
    total = 0
    for node in nodes:
        if node.WhichOneof("kind") != "variable" or not node.variable.trainable:
            continue
        shape = node.variable.shape
        if shape.unknown_rank or any(dim.size < 0 for dim in shape.dim):
            return None
        total += math.prod(dim.size for dim in shape.dim)
    return total
