"""The STAC Item (MLM extension) of a push: its fields, and offline schema validation."""

from __future__ import annotations

import copy
import socket
import urllib.request

import pytest

from retrain.adapters.stac_mlm import (
    StacItemError,
    local_schemas,
    mlm_data_type,
    stac_item,
    validate_stac_item,
)
from retrain.domain.publication import PublicationFacts

MLM_URI = "https://stac-extensions.github.io/mlm/v1.4.0/schema.json"


def _tensor(name: str, dtype: str, *shape: int | None) -> dict:
    return {"name": name, "dtype": dtype, "shape": list(shape)}


# The Pusher may hand the facts over as plain data (JSON); pydantic builds the models.
SERVING = {"name": "serving_default",
           "inputs": [_tensor("buyer_id", "string", None), _tensor("hour", "int64", None)],
           "outputs": [_tensor("candidate_ids", "string", None, 10),
                       _tensor("scores", "float32", None, 10)]}
EMBEDDING = {"name": "query_embedding", "inputs": [_tensor("examples", "string", None)],
             "outputs": [_tensor("embedding", "float32", None, 32)]}


def _facts(**changes) -> PublicationFacts:
    base = {
        "model_name": "buyer-product-retrieval", "model_type": "retrieval",
        "registered_version": "7", "serving_version": "1714566600",
        "serving_uri": "gs://models/serving/buyer-product-retrieval/1714566600",
        "run_name": "buyer-product-retrieval #12", "run_id": "9c1d", "flow_run_id": "flow-3",
        "mlflow_run_id": "mlf-5", "pushed_at": "2024-05-01T12:30:00+00:00",
        "framework_version": "2.16.2", "signatures": [EMBEDDING, SERVING],
        "hyperparameters": {"model.top_k": "10", "model.output_dim": "32",
                            "training.learning_rate": "0.05", "trainer.seed": "None",
                            "pusher.serving_base": "gs://models/serving", "input.uri": "gs://d"},
        "training_data_uri": "gs://data/orders", "training_data_format": "parquet",
        "splits": [{"name": "train", "rows": 12000}, {"name": "eval", "rows": 3000}],
        "feature_names": ["buyer_id", "hour"],
        "metrics": [{"name": "recall_at_10", "value": 0.3125, "champion": 0.2875,
                     "higher_is_better": True}],
        "champion_version": "6",
        "blessing_rules": [{"metric": "recall_at_10", "passed": True, "message": "ok"}],
        "total_parameters": 48_640,
    }
    return PublicationFacts.model_validate({**base, **changes})


def _item(facts: PublicationFacts | None = None) -> dict:
    return stac_item(facts or _facts(), model_href="gs://models/serving/x/1714566600",
                     card_href="model_card.md")


def test_the_item_validates():
    validate_stac_item(_item())


def test_core_fields():
    item = _item()
    assert item["type"] == "Feature" and item["stac_version"] == "1.1.0"
    assert item["stac_extensions"] == [MLM_URI]
    assert item["id"] == "buyer-product-retrieval-v7"
    assert item["geometry"] is None and "bbox" not in item
    assert item["properties"]["datetime"] == "2024-05-01T12:30:00Z"
    assert item["properties"]["title"] == "buyer-product-retrieval v7"


@pytest.mark.parametrize("model_name, expected", [
    ("cc", "model cc"), ("7up", "model 7up"), ("ranker-", "model ranker"), ("a", "model a"),
    ("ranker_2", "ranker_2")])
def test_any_model_name_gives_a_valid_item(model_name, expected):
    """Model names the config accepts but MLM's mlm:name pattern does not (too short, a
    digit first, - or _ last) still give an item that validates."""
    item = _item(_facts(model_name=model_name))
    validate_stac_item(item)
    assert item["properties"]["mlm:name"] == expected


def test_mlm_properties_describe_the_serving_signature():
    props = _item()["properties"]
    assert props["mlm:name"] == "buyer-product-retrieval"
    assert props["mlm:architecture"] == "two-tower"
    assert props["mlm:tasks"] == ["similarity-search"]
    assert props["mlm:framework"] == "TensorFlow"
    assert props["mlm:framework_version"] == "2.16.2"
    assert props["mlm:total_parameters"] == 48_640
    assert props["mlm:pretrained"] is False and props["mlm:pretrained_source"] is None
    assert props["mlm:accelerator"] == "amd64"
    # serving_default, not the first signature by name (query_embedding)
    assert [(i["name"], i["bands"], i["input"]) for i in props["mlm:input"]] == [
        ("buyer_id", [], {"shape": [-1], "dim_order": ["batch"], "data_type": "other"}),
        ("hour", [], {"shape": [-1], "dim_order": ["batch"], "data_type": "int64"}),
    ]
    assert [(o["name"], o["tasks"], o["result"]) for o in props["mlm:output"]] == [
        ("candidate_ids", ["similarity-search"],
         {"shape": [-1, 10], "dim_order": ["batch", "candidate_ids"], "data_type": "other"}),
        ("scores", ["similarity-search"],
         {"shape": [-1, 10], "dim_order": ["batch", "scores"], "data_type": "float32"}),
    ]


def test_hyperparameters_are_the_set_model_and_training_keys():
    assert _item()["properties"]["mlm:hyperparameters"] == {
        "model.output_dim": "32", "model.top_k": "10", "training.learning_rate": "0.05"}


def test_assets_model_and_card():
    assets = _item()["assets"]
    assert set(assets) == {"model", "model-card"}
    model = assets["model"]
    assert model["href"] == "gs://models/serving/x/1714566600"
    assert "mlm:model" in model["roles"]
    assert model["mlm:artifact_type"] == "tf.saved_model.save"
    assert model["type"] == "inode/directory"
    card = assets["model-card"]
    assert (card["href"], card["type"], card["roles"]) == (
        "model_card.md", "text/markdown", ["metadata"])
    assert "mlm:artifact_type" not in card


def test_retrain_properties():
    props = _item()["properties"]
    assert props["retrain:run_id"] == "9c1d"
    assert props["retrain:run_name"] == "buyer-product-retrieval #12"
    assert props["retrain:flow_run_id"] == "flow-3"
    assert props["retrain:mlflow_run_id"] == "mlf-5"
    assert props["retrain:registered_version"] == "7"
    assert props["retrain:serving_version"] == "1714566600"
    assert props["retrain:champion_replaced"] == "6"
    assert props["retrain:model_type"] == "retrieval"
    assert props["retrain:training_data"] == {
        "uri": "gs://data/orders", "format": "parquet", "rows": {"train": 12000, "eval": 3000}}
    assert props["retrain:metrics"] == {"recall_at_10": {
        "value": 0.3125, "champion": 0.2875, "delta": 0.025, "higher_is_better": True}}


def test_a_first_ranking_version_without_a_parameter_count():
    facts = _facts(model_type="ranking", champion_version=None, total_parameters=None,
                   metrics=[{"name": "rmse", "value": 0.9, "higher_is_better": False}],
                   signatures=[{"name": "rank", "inputs": [_tensor("buyer_id", "string", None)],
                                "outputs": [_tensor("score", "float32", None, 1)]}])
    item = _item(facts)
    validate_stac_item(item)
    props = item["properties"]
    assert props["mlm:tasks"] == ["regression"] and props["mlm:output"][0]["tasks"] == [
        "regression"]
    assert props["mlm:input"][0]["name"] == "buyer_id"  # no serving_default: the first
    assert props["mlm:output"][0]["result"]["dim_order"] == ["batch", "score"]
    assert "mlm:total_parameters" not in props
    assert props["retrain:champion_replaced"] is None
    assert props["retrain:metrics"]["rmse"]["delta"] is None


def test_scalar_unknown_rank_and_rank_three_tensors_still_validate():
    odd = {"name": "serving_default",
           "inputs": [_tensor("k", "int32"), {"name": "raw", "dtype": "bool", "shape": None}],
           "outputs": [_tensor("Cube 3", "complex64", None, 2, 4)]}
    item = _item(_facts(signatures=[odd], model_type="user_module"))
    validate_stac_item(item)
    inputs, output = item["properties"]["mlm:input"], item["properties"]["mlm:output"][0]
    assert inputs[0]["input"]["shape"] == [1] and inputs[1]["input"]["shape"] == [-1]
    assert output["result"] == {"shape": [-1, 2, 4], "dim_order": ["batch", "cube-a", "cube-b"],
                                "data_type": "cfloat32"}


def test_no_signature_is_refused():
    with pytest.raises(ValueError, match="no signature"):
        _item(_facts(signatures=[]))


@pytest.mark.parametrize(("dtype", "expected"), [
    ("float32", "float32"), ("int64", "int64"), ("uint8", "uint8"), ("string", "other"),
    ("bool", "other"), ("bfloat16", "other"), ("complex128", "cfloat64")])
def test_tf_dtypes_map_to_mlm_data_types(dtype, expected):
    assert mlm_data_type(dtype) == expected


def test_a_missing_input_is_rejected_and_named():
    item = _item()
    del item["properties"]["mlm:input"]
    with pytest.raises(StacItemError) as raised:
        validate_stac_item(item)
    assert "[mlm] $.properties: 'mlm:input' is a required property" in str(raised.value)


def test_every_failure_is_named_on_its_own_line():
    item = _item()
    item["properties"]["mlm:input"][0]["input"]["data_type"] = "text"
    item["properties"]["mlm:tasks"] = ["recommendation"]
    item["properties"]["mlm:framework_version"] = "2.16"
    del item["assets"]["model"]["mlm:artifact_type"]
    item["properties"]["datetime"] = "yesterday"
    with pytest.raises(StacItemError) as raised:
        validate_stac_item(item)
    errors = raised.value.errors
    assert str(raised.value).splitlines()[1:] == errors
    joined = "\n".join(errors)
    assert "$.properties['mlm:input'][0].input.data_type: 'text' is not one of" in joined
    assert "$.properties['mlm:tasks'][0]: 'recommendation' is not one of" in joined
    assert "$.properties['mlm:framework_version']: '2.16' does not match" in joined
    assert "$.assets.model: 'mlm:artifact_type' is a required property" in joined
    assert any(line.startswith("[stac-item]") and "datetime" in line for line in errors)


def test_an_undeclared_extension_schema_is_an_error_not_a_download():
    item = _item()
    item["stac_extensions"].append("https://stac-extensions.github.io/eo/v1.1.0/schema.json")
    with pytest.raises(StacItemError, match=r"\[eo\] \$: schema https://stac-extensions"
                                            r".github.io/eo/v1.1.0/schema.json is not "
                                            r"available offline"):
        validate_stac_item(item)


def test_every_remote_reference_of_the_local_schemas_resolves_locally():
    from referencing import Registry, Resource

    schemas = local_schemas()
    registry = Registry().with_resources(
        (uri, Resource.from_contents(schema)) for uri, schema in schemas.items())
    refs = set()

    def walk(node):
        if isinstance(node, dict):
            refs.update([node["$ref"]] if isinstance(node.get("$ref"), str) else [])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schemas[MLM_URI])
    remote = sorted(ref for ref in refs if ref.startswith("http"))
    assert len(remote) == 3  # raster data_type, classification classes, processing expression
    resolver = registry.resolver()
    for ref in remote:
        assert resolver.lookup(ref).contents, ref


def test_validation_makes_no_network_call(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"network used: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    item = _item()
    validate_stac_item(copy.deepcopy(item))
    item["properties"]["mlm:output"][0]["result"]["data_type"] = "text"
    item["stac_extensions"].append("https://stac-extensions.github.io/eo/v1.1.0/schema.json")
    with pytest.raises(StacItemError) as raised:
        validate_stac_item(item)
    assert len(raised.value.errors) == 2
