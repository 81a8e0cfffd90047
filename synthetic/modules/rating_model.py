"""A plain TFX user module for the synthetic B2B interactions: predict a buyer's rating.

It is what any TFX user would write (`preprocessing_fn` for Transform, `run_fn(fn_args)` for
Trainer) and is loaded by path by the executors, exactly like a user's own module. The main
job and the integration tests train it; TFRS models built from typed config come later.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer.fn_args_utils import FnArgs
from tfx_bsl.public import tfxio

CATEGORICAL = ("buyer_id", "product_id", "category", "city")
LABEL = "rating"
LABEL_XF = "rating_xf"
EMBEDDING_DIM = 8
BATCH_SIZE = 64


def _xf(name: str) -> str:
    return f"{name}_xf"


def _dense(x: tf.Tensor | tf.SparseTensor, default) -> tf.Tensor:
    """Missing values → default; SparseTensor [batch, 1] → dense [batch]."""
    if isinstance(x, tf.sparse.SparseTensor):
        x = tf.sparse.to_dense(
            tf.SparseTensor(x.indices, x.values, [x.dense_shape[0], 1]), default
        )
    return tf.reshape(x, [-1])


def preprocessing_fn(inputs):
    """Vocabularies for the id columns (from the full data), hour of day, the label."""
    outputs = {}
    for name in CATEGORICAL:
        outputs[_xf(name)] = tft.compute_and_apply_vocabulary(
            _dense(inputs[name], ""), num_oov_buckets=1, vocab_filename=name
        )
    seconds = _dense(inputs["timestamp"], 0)
    outputs[_xf("hour")] = tf.cast(tf.math.floormod(seconds // 3600, 24), tf.int64)
    outputs[LABEL_XF] = tf.cast(_dense(inputs[LABEL], 3.0), tf.float32)
    return outputs


def _dataset(files, data_accessor, tf_transform_output, batch_size: int) -> tf.data.Dataset:
    return data_accessor.tf_dataset_factory(
        files,
        tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key=LABEL_XF),
        tf_transform_output.transformed_metadata.schema,
    ).repeat()


def _build_model(tf_transform_output) -> tf.keras.Model:
    inputs, embedded = {}, []
    for name in CATEGORICAL:
        size = tf_transform_output.vocabulary_size_by_name(name) + 1
        inputs[_xf(name)] = tf.keras.layers.Input(shape=(), name=_xf(name), dtype=tf.int64)
        embedded.append(tf.keras.layers.Embedding(size, EMBEDDING_DIM)(inputs[_xf(name)]))
    inputs[_xf("hour")] = tf.keras.layers.Input(shape=(), name=_xf("hour"), dtype=tf.int64)
    embedded.append(tf.keras.layers.Embedding(24, 4)(inputs[_xf("hour")]))
    x = tf.keras.layers.concatenate(embedded)
    x = tf.keras.layers.Dense(32, activation="relu")(x)
    rating = tf.keras.layers.Dense(1)(x)
    model = tf.keras.Model(inputs=inputs, outputs=tf.squeeze(rating, axis=-1))
    model.compile(
        optimizer=tf.keras.optimizers.Adam(0.01),
        loss="mse",
        metrics=[tf.keras.metrics.MeanAbsoluteError()],
    )
    return model


def _serving_signature(model, tf_transform_output):
    model.tft_layer_inference = tf_transform_output.transform_features_layer()

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def serve(serialized):
        spec = tf_transform_output.raw_feature_spec()
        spec.pop(LABEL)
        features = model.tft_layer_inference(tf.io.parse_example(serialized, spec))
        return {"rating": model(features)}

    return serve


def _transform_signature(model, tf_transform_output):
    model.tft_layer_eval = tf_transform_output.transform_features_layer()

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def transform_features(serialized):
        spec = tf_transform_output.raw_feature_spec()
        return model.tft_layer_eval(tf.io.parse_example(serialized, spec))

    return transform_features


def run_fn(fn_args: FnArgs) -> None:
    """Train for fn_args.train_steps and export serving + transform_features signatures."""
    tf.keras.utils.set_random_seed(int(fn_args.custom_config.get("seed", 0)) if fn_args.custom_config else 0)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    train = _dataset(fn_args.train_files, fn_args.data_accessor, tf_transform_output, BATCH_SIZE)
    evaluation = _dataset(fn_args.eval_files, fn_args.data_accessor, tf_transform_output, BATCH_SIZE)
    model = _build_model(tf_transform_output)
    model.fit(
        train,
        steps_per_epoch=fn_args.train_steps,
        validation_data=evaluation,
        validation_steps=fn_args.eval_steps,
        verbose=2,
    )
    signatures = {
        "serving_default": _serving_signature(model, tf_transform_output),
        "transform_features": _transform_signature(model, tf_transform_output),
    }
    tf.saved_model.save(model, fn_args.serving_model_dir, signatures=signatures)
