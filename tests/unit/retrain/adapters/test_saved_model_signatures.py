"""Signatures and the parameter count, read from a tiny SavedModel written here."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrain.adapters.saved_model import count_parameters, read_signatures
from retrain.adapters.tfx import prepare_tf_environment
from retrain.domain.publication import Signature, TensorSpec


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory) -> str:
    """A module with 4×3 + 3 trainable weights, 10 frozen ones and two signatures."""
    prepare_tf_environment()
    import tensorflow as tf

    class Tiny(tf.Module):
        def __init__(self):
            super().__init__()
            self.kernel = tf.Variable(tf.ones([4, 3]), name="kernel")
            self.bias = tf.Variable(tf.zeros([3]), name="bias")
            self.frozen = tf.Variable(tf.zeros([10]), trainable=False, name="frozen")

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="query")])
        def serve(self, query):
            bucket = tf.strings.to_hash_bucket_fast(query, 4)
            return {"scores": tf.gather(self.kernel, bucket) + self.bias, "bucket": bucket}

        @tf.function(input_signature=[tf.TensorSpec([2, None], tf.float32, name="x")])
        def total(self, x):
            return {"sum": tf.reduce_sum(x) + tf.reduce_sum(self.frozen)}

    module = Tiny()
    path = tmp_path_factory.mktemp("saved") / "1714566600"
    tf.saved_model.save(module, str(path),
                        signatures={"serving_default": module.serve, "a_total": module.total})
    return str(path)


def test_signatures_names_dtypes_and_shapes(saved_model):
    assert read_signatures(saved_model) == [
        Signature(name="a_total",
                  inputs=[TensorSpec(name="x", dtype="float32", shape=[2, None])],
                  outputs=[TensorSpec(name="sum", dtype="float32", shape=[])]),
        Signature(name="serving_default",
                  inputs=[TensorSpec(name="query", dtype="string", shape=[None])],
                  outputs=[TensorSpec(name="bucket", dtype="int64", shape=[None]),
                           TensorSpec(name="scores", dtype="float32", shape=[None, 3])]),
    ]


def test_signatures_agree_with_what_tensorflow_loads(saved_model):
    import tensorflow as tf

    loaded = tf.saved_model.load(saved_model).signatures
    read = {signature.name: signature for signature in read_signatures(saved_model)}
    assert sorted(read) == sorted(loaded.keys())
    for name, function in loaded.items():
        outputs = {key: (spec.dtype.name, spec.shape.as_list())
                   for key, spec in function.structured_outputs.items()}
        assert {o.name: (o.dtype, o.shape) for o in read[name].outputs} == outputs
        inputs = {key: (spec.dtype.name, spec.shape.as_list())
                  for key, spec in function.structured_input_signature[1].items()}
        assert {i.name: (i.dtype, i.shape) for i in read[name].inputs} == inputs


def test_count_parameters_sums_the_trainable_variables(saved_model):
    assert count_parameters(saved_model) == 4 * 3 + 3  # the 10 frozen ones do not count


def test_a_trailing_slash_is_fine(saved_model):
    assert [s.name for s in read_signatures(saved_model + "/")] == ["a_total", "serving_default"]


def test_a_directory_without_a_saved_model_is_an_error(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="no saved_model.pb"):
        read_signatures(str(tmp_path))
    with pytest.raises(FileNotFoundError):
        count_parameters(str(tmp_path))
