"""The trivial predictors' data (train-split columns from TFRecords), TFMA's metric names, and
the TFMA blessing the trivial-baseline rule withholds."""

from __future__ import annotations

import numpy as np
import pytest


def _write_examples(path, rows):
    """Uncompressed tf.Examples; a None value leaves the feature out of that row."""
    import tensorflow as tf

    with tf.io.TFRecordWriter(str(path)) as writer:
        for row in rows:
            example = tf.train.Example()
            for name, value in row.items():
                if value is None:
                    continue
                feature = example.features.feature[name]
                if isinstance(value, int):
                    feature.int64_list.value.append(value)
                elif isinstance(value, float):
                    feature.float_list.value.append(value)
                else:
                    feature.bytes_list.value.append(value)
            writer.write(example.SerializeToString())


def test_train_pass_counts_corpus_targets_and_averages_the_target(tmp_path):
    import tensorflow as tf

    from tasks.evaluator.executor import TrivialInputs, learn_trivial

    split = tmp_path / "Split-train"
    split.mkdir()
    # Integer ids: the vocabulary (and so the corpus) holds them as decimal strings.
    ids = [7, 3, 7, 9, 7, 11, 3]
    ratings = [5.0, 1.0, None, 3.0, 4.0, 2.0, None]
    _write_examples(split / "part-0", [{"product_id": i, "rating": r, "city": b"x"}
                                       for i, r in zip(ids, ratings)])
    inputs = TrivialInputs(
        train_files=[str(split / "part-0")],
        raw_spec={"product_id": tf.io.FixedLenFeature([], tf.int64),
                  "rating": tf.io.VarLenFeature(tf.float32),
                  "city": tf.io.FixedLenFeature([], tf.string)},
        candidate_column="product_id", target_column="rating",
    )
    lookup = {b"3": 0, b"7": 1, b"9": 2}  # 11 is not in the corpus
    counts, mean = learn_trivial(inputs, lookup, want_mean=True, batch_size=3)
    assert counts.tolist() == [2, 3, 1]
    assert mean == pytest.approx(np.mean([5.0, 1.0, 3.0, 4.0, 2.0]))  # rows with a rating
    # a retrieval model has no mean to learn, a ranking model no corpus
    assert learn_trivial(inputs, lookup, want_mean=False, batch_size=4)[1] is None
    assert learn_trivial(inputs, None, want_mean=True, batch_size=4)[0] is None


def test_tfma_names_the_metrics_as_the_trivial_table_says():
    from tensorflow_model_analysis.metrics import metric_specs
    from tensorflow_model_analysis.proto import config_pb2

    from tasks.evaluator.trivial import TFMA_KEYS

    for class_name, key in TFMA_KEYS.items():
        spec = config_pb2.MetricsSpec(metrics=[config_pb2.MetricConfig(class_name=class_name)])
        eval_config = config_pb2.EvalConfig(model_specs=[config_pb2.ModelSpec(label_key="y")])
        names = {k.name for c in metric_specs.to_computations([spec], eval_config)
                 for k in c.keys}
        assert key in names, (class_name, names)


def test_a_withheld_tfma_blessing_reads_not_blessed_to_the_pusher(tmp_path):
    from tfx.types import standard_artifacts

    from tasks.evaluator.core import force_blessing, withhold_blessing
    from retrain.domain.refs import ArtifactRef

    artifact = standard_artifacts.ModelBlessing()
    artifact.uri = str(tmp_path / "blessing")
    (tmp_path / "blessing").mkdir()
    (tmp_path / "blessing" / "BLESSED").write_text("")
    artifact.set_int_custom_property("blessed", 1)
    withheld = withhold_blessing(ArtifactRef.from_tfx(artifact), "rmse 1 does not beat …")
    assert sorted(p.name for p in (tmp_path / "blessing").iterdir()) == ["NOT_BLESSED"]
    again = withheld.to_tfx()
    assert again.get_int_custom_property("blessed") == 0
    assert again.get_string_custom_property("withheld_reason") == "rmse 1 does not beat …"
    # force-bless still turns it back, as it does TFMA's own NOT_BLESSED
    forced = force_blessing(withheld, "known weak model").to_tfx()
    assert sorted(p.name for p in (tmp_path / "blessing").iterdir()) == ["BLESSED"]
    assert forced.get_int_custom_property("blessed") == 1
