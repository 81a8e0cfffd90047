"""Recommender configs (features, model, training, blessing rules) are checked up front.

Every bad config fails at validation, before any stage runs, with a message naming the field.
"""

from __future__ import annotations

import copy

import pytest
from pydantic import ValidationError

from retrain.domain.config import PipelineConfig
from retrain.domain.examples import RECOMMENDER_FEATURES, recommender_config


def _values(model_type: str = "retrieval", **overrides) -> dict:
    values = recommender_config("/data", model_type).model_dump(mode="json", by_alias=True)
    for key, value in overrides.items():
        values[key] = value
    return values


def _error(values: dict) -> str:
    with pytest.raises(ValidationError) as info:
        PipelineConfig.model_validate(values)
    return str(info.value)


def _features(**changes) -> dict:
    features = copy.deepcopy(RECOMMENDER_FEATURES)
    features.update(changes)
    return features


@pytest.mark.parametrize("model_type", ["retrieval", "ranking", "multitask"])
def test_example_configs_are_valid_and_need_no_user_module(model_type):
    config = recommender_config("/data", model_type)
    assert config.transform.module_file is None and config.trainer_module_file is None
    spec = config.recommender
    assert spec.model.type == model_type and spec.features.candidate_id == "product_id"
    # what the towers will see, derived in one place
    names = [c.name for c in spec.features.xf_columns("query")]
    assert names == ["buyer_id_xf", "city_xf", "timestamp__hour_sin_xf", "timestamp__hour_cos_xf",
                     "timestamp__weekday_sin_xf", "timestamp__weekday_cos_xf"]


def test_cross_of_an_unknown_feature():
    crosses = [{"columns": ["city", "region"], "embedding_dim": 4}]
    message = _error(_values(features=_features(crosses=crosses)))
    assert "features.crosses[0]: unknown feature 'region'" in message


def test_cross_of_a_numeric_feature():
    query = RECOMMENDER_FEATURES["query"] + [{"kind": "numeric", "name": "quantity"}]
    crosses = [{"columns": ["city", "quantity"], "embedding_dim": 4}]
    message = _error(_values(features=_features(query=query, crosses=crosses)))
    assert "features.crosses[0]: 'quantity' is numeric" in message


def test_cross_across_towers():
    crosses = [{"columns": ["city", "category"], "embedding_dim": 4}]
    assert "in different towers" in _error(_values(features=_features(crosses=crosses)))


@pytest.mark.parametrize("dim", [0, -8])
def test_embedding_dim_must_be_positive(dim):
    query = [{"kind": "categorical", "name": "buyer_id", "embedding_dim": dim}]
    message = _error(_values(features=_features(query=query)))
    assert "query.0.categorical.embedding_dim" in message and "greater than 0" in message


def test_output_dim_and_layer_units_must_be_positive():
    model = {"type": "retrieval", "output_dim": 0, "query_tower": [{"units": -1}]}
    message = _error(_values(model=model))
    assert "model.output_dim" in message and "model.query_tower.0.units" in message


def test_unknown_candidate_id():
    message = _error(_values(features=_features(candidate_id="sku")))
    assert "features.candidate_id: unknown candidate feature 'sku'" in message


def test_unknown_feature_kind_is_named():
    query = [{"kind": "image", "name": "photo"}]
    assert "query.0" in _error(_values(features=_features(query=query)))


@pytest.mark.parametrize("model_type", ["ranking", "multitask"])
def test_ranking_and_multitask_need_a_target(model_type):
    message = _error(_values(model_type, features=_features(target=None)))
    assert f"features.target: required for a {model_type} model" in message


def test_target_cannot_also_be_an_input():
    message = _error(_values("ranking", features=_features(target={"column": "city"})))
    assert "label leak" in message


def test_a_model_needs_features():
    assert "features: required for a retrieval model" in _error(_values(features=None))


def test_a_metric_the_model_type_does_not_have():
    evaluator = {"metrics": [{"class_name": "rmse", "upper_bound": 1.0}]}
    message = _error(_values("retrieval", evaluator=evaluator))
    assert "evaluator.metrics[0].class_name: 'rmse' is not a retrieval metric" in message


def test_force_bless_needs_a_reason():
    evaluator = {"metrics": [], "force_bless": {"reason": ""}}
    assert "evaluator.force_bless.reason" in _error(_values(evaluator=evaluator))


def test_bad_training_params_are_named():
    message = _error(_values(training={"epochs": 0, "batch_size": 1, "learning_rate": -1}))
    for field in ("training.epochs", "training.batch_size", "training.learning_rate"):
        assert field in message


def test_direction_of_change_thresholds_is_inferred_from_the_metric():
    config = recommender_config("/data", "multitask")
    directions = {m.class_name: m.better_higher for m in config.evaluator.metrics}
    assert directions == {"recall_at_100": True, "rmse": False}


def test_transformed_names_must_not_collide():
    query = RECOMMENDER_FEATURES["query"] + [
        {"kind": "categorical", "name": "timestamp__hour_sin", "embedding_dim": 4}]
    message = _error(_values(features=_features(query=query)))
    assert "transformed names collide: ['timestamp__hour_sin_xf']" in message


def test_retrieval_options_on_a_ranking_model_are_refused():
    model = {"type": "ranking", "logq_correction": True}
    assert "not for a ranking model" in _error(_values("ranking", model=model))


def test_feature_overrides_leave_the_example_features_as_they_were():
    """Two configs built one after the other: the second gets the example's features, not
    the first one's overrides (the merge works in place)."""
    before = copy.deepcopy(RECOMMENDER_FEATURES)
    changed = recommender_config("/data", "retrieval", features={
        "query": RECOMMENDER_FEATURES["query"][:1],
        "feedback": [{"column": "quantity", "kind": "count", "low": 1.0}]})
    assert [f.name for f in changed.features.query] == ["buyer_id"]
    assert RECOMMENDER_FEATURES == before
    again = recommender_config("/data", "retrieval")
    assert [f.name for f in again.features.query] == ["buyer_id", "city", "timestamp"]
    assert again.features.feedback == []


def test_the_posterior_example_reads_ratings_and_quantities_with_buyers_as_queries():
    from retrain.domain.examples import POSTERIOR_RETRIEVAL
    from retrain.domain.recommender import FitMethod

    config = recommender_config("/data", "retrieval", **copy.deepcopy(POSTERIOR_RETRIEVAL))
    assert config.model.fit == FitMethod.POSTERIOR
    assert [f.name for f in config.features.query] == ["buyer_id", "city"]
    assert [(f.column, f.kind.value, f.low, f.high) for f in config.features.feedback] == [
        ("rating", "rating", 1.0, 5.0), ("quantity", "count", 1.0, None)]
