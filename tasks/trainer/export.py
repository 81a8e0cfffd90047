"""Export a trained recommender as SavedModels that take raw features.

`<model>/Format-Serving` (what the Pusher pushes) has the transform graph embedded and these
signatures:

| signature | inputs | outputs |
|---|---|---|
| `serving_default` | raw query columns, one tensor each (retrieval, multitask); query and candidate columns (ranking) | `candidate_ids`, `scores` (top-K) or `score` |
| `serve_examples` | `examples`: serialized tf.Example | same as serving_default |
| `rank` | raw query and candidate columns (multitask) | `score` |
| `query_embedding`, `candidate_embedding` | serialized tf.Example | `embedding` |
| `evaluate_examples` | serialized tf.Example | what the Evaluator needs (embeddings, raw ids, predictions, targets) |
| `search` | `embedding`: query embeddings | top-K `candidate_ids`, `scores` |
| `candidate_corpus` | none | `candidate_ids`, `embeddings` of every candidate |
| `transform_features` | serialized tf.Example | transformed features (the TFX convention) |

For retrieval models, `<model>/query_model`, `<model>/candidate_model` and `<model>/index`
(`search`: brute-force top-K over all candidates, query embedding in, ids and scores out;
`candidate_corpus`) are exported
beside it. Scores and predictions are in raw target units (a log1p target is inverted).
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from retrain.domain.recommender import RecommenderSpec
from tasks.transform.preprocessing import dense_column, string_column


class RecommenderServing(tf.Module):
    """The trained towers, the transform graph and the candidate index, raw features in."""

    def __init__(self, model: tf.keras.Model, spec: RecommenderSpec, tft_output,
                 candidate_ids: np.ndarray, candidate_features: dict[str, tf.Tensor]):
        super().__init__()
        self.model = model
        self.tft_layer = tft_output.transform_features_layer()
        self._raw_spec = tft_output.raw_feature_spec()
        self._spec = spec
        features = spec.features
        missing = [c for c in features.raw_columns() if c not in self._raw_spec]
        if missing:
            raise ValueError(f"features not in the schema: {missing}")
        self._query_columns = features.raw_columns("query")
        self._candidate_columns = features.raw_columns("candidate")
        self._id_column = features.candidate_id_feature.name
        if spec.model.has_retrieval:
            embeddings = model.candidate_tower(candidate_features)
            self.candidate_ids = tf.Variable(tf.constant(candidate_ids.astype(bytes)),
                                             trainable=False, name="candidate_ids")
            self.candidate_embeddings = tf.Variable(embeddings, trainable=False,
                                                    name="candidate_embeddings")
            self.index = tfrs.layers.factorized_top_k.BruteForce(
                k=min(spec.model.top_k, len(candidate_ids))
            )
            self.index.index(embeddings, self.candidate_ids)

    # -- inputs ------------------------------------------------------------------------
    def _parse(self, serialized: tf.Tensor, columns: list[str]) -> dict[str, Any]:
        return tf.io.parse_example(serialized, {c: self._raw_spec[c] for c in columns})

    def _as_raw(self, tensors: dict[str, tf.Tensor]) -> dict[str, Any]:
        """Named [batch] request tensors shaped as the raw feature spec expects."""
        raw = {}
        for name, value in tensors.items():
            spec = self._raw_spec[name]
            if isinstance(spec, tf.io.VarLenFeature):
                raw[name] = tf.sparse.from_dense(tf.expand_dims(value, 1))
            elif spec.shape and spec.shape[0] == 1:
                raw[name] = tf.expand_dims(value, 1)
            else:
                raw[name] = value
        return raw

    def _request_spec(self, columns: list[str]) -> dict[str, tf.TensorSpec]:
        return {c: tf.TensorSpec([None], self._raw_spec[c].dtype, name=c) for c in columns}

    # -- outputs -----------------------------------------------------------------------
    def _top_k(self, raw: dict[str, Any]) -> dict[str, tf.Tensor]:
        queries = self.model.query_tower(self.tft_layer(raw))
        scores, ids = self.index(queries)
        return {"candidate_ids": ids, "scores": scores}

    def _score(self, raw: dict[str, Any]) -> tf.Tensor:
        prediction = self.model.predict_rating(self.tft_layer(raw))
        if self._spec.features.target.transform == "log1p":
            prediction = tf.math.expm1(prediction)
        return prediction

    def _answer(self, raw: dict[str, Any]) -> dict[str, tf.Tensor]:
        if self._spec.model.has_retrieval:
            return self._top_k(raw)
        return {"score": self._score(raw)}

    # -- signatures --------------------------------------------------------------------
    @property
    def _serving_columns(self) -> list[str]:
        if self._spec.model.has_retrieval:
            return self._query_columns
        return self._query_columns + self._candidate_columns

    def signatures(self) -> dict[str, Any]:
        """Every serving signature for this model type, as concrete functions."""
        examples = tf.TensorSpec([None], tf.string, name="examples")
        model = self._spec.model
        sigs: dict[str, Any] = {}

        @tf.function
        def serve(**tensors):
            return self._answer(self._as_raw(tensors))

        sigs["serving_default"] = serve.get_concrete_function(
            **self._request_spec(self._serving_columns)
        )
        sigs["serve_examples"] = tf.function(
            lambda examples: self._answer(self._parse(examples, self._serving_columns))
        ).get_concrete_function(examples)
        sigs["transform_features"] = tf.function(
            lambda examples: self.tft_layer(self._parse(examples, list(self._raw_spec)))
        ).get_concrete_function(examples)
        if model.type == "multitask":
            @tf.function
            def rank(**tensors):
                return {"score": self._score(self._as_raw(tensors))}

            sigs["rank"] = rank.get_concrete_function(
                **self._request_spec(self._query_columns + self._candidate_columns)
            )
        if model.has_retrieval:
            sigs["query_embedding"] = tf.function(
                lambda examples: {"embedding": self.model.query_tower(
                    self.tft_layer(self._parse(examples, self._query_columns)))}
            ).get_concrete_function(examples)
            sigs["candidate_embedding"] = tf.function(
                lambda examples: {"embedding": self.model.candidate_tower(
                    self.tft_layer(self._parse(examples, self._candidate_columns)))}
            ).get_concrete_function(examples)
            sigs["search"] = tf.function(
                lambda embedding: dict(zip(("scores", "candidate_ids"), self.index(embedding)))
            ).get_concrete_function(tf.TensorSpec([None, self.model.query_tower.output_dim],
                                                  tf.float32,
                                                  name="embedding"))
            sigs["candidate_corpus"] = tf.function(
                lambda: {"candidate_ids": tf.identity(self.candidate_ids),
                         "embeddings": tf.identity(self.candidate_embeddings)}
            ).get_concrete_function()
        sigs["evaluate_examples"] = tf.function(self._evaluate).get_concrete_function(examples)
        return sigs

    def _evaluate(self, examples: tf.Tensor) -> dict[str, tf.Tensor]:
        """Per example: what the Evaluator scores (the raw truth comes from the example)."""
        out: dict[str, tf.Tensor] = {}
        if self._spec.model.has_retrieval:
            raw = self._parse(examples, self._query_columns + [self._id_column])
            out["query_embedding"] = self.model.query_tower(self.tft_layer(raw))
            # The same string form the candidate-id vocabulary was built from.
            out["candidate_id"] = string_column(raw[self._id_column])
        if self._spec.model.has_ranking:
            target = self._spec.features.target.column
            raw = self._parse(examples, self._query_columns + self._candidate_columns + [target])
            out["prediction"] = self._score(raw)
            truth = raw[target]
            present = (tf.sparse.to_dense(tf.sparse.map_values(tf.ones_like, truth), 0)
                       if isinstance(truth, tf.SparseTensor) else tf.ones_like(truth))
            out["has_target"] = tf.reshape(tf.cast(present, tf.bool), [-1])
            out["target"] = tf.cast(dense_column(truth, tf.zeros([], truth.dtype)), tf.float32)
        return out


def export_recommender(model: tf.keras.Model, spec: RecommenderSpec, tft_output,
                       candidate_ids: np.ndarray, candidate_features: dict[str, tf.Tensor],
                       serving_dir: str, model_dir: str, training: dict[str, Any]) -> None:
    """Write the serving model (and, for retrieval, query/candidate models and the index)."""
    module = RecommenderServing(model, spec, tft_output, candidate_ids, candidate_features)
    sigs = module.signatures()
    tf.saved_model.save(module, serving_dir, signatures=sigs)
    if spec.model.has_retrieval:
        parts = {
            "query_model": ["query_embedding"],
            "candidate_model": ["candidate_embedding"],
            "index": ["search", "candidate_corpus"],
        }
        for name, keep in parts.items():
            tf.saved_model.save(module, os.path.join(model_dir, name),
                                signatures={k: sigs[k] for k in keep})
    summary = {
        "model_type": spec.model.type,
        "candidates": int(len(candidate_ids)),
        "top_k": spec.model.top_k,
        "signatures": sorted(sigs),
        **training,
    }
    with tf.io.gfile.GFile(os.path.join(model_dir, "recommender.json"), "w") as handle:
        handle.write(json.dumps(summary, indent=2))
