"""A pushed model as a STAC Item with the Machine Learning Model (MLM) extension, and its
validation against the STAC and MLM JSON schemas, offline.

`stac_item()` builds the Item with pystac from `PublicationFacts`; `validate_stac_item()`
checks it against STAC core (the Item and GeoJSON schemas pystac-core ships) and against
every extension schema the Item declares, vendored under `schemas/` (see its README). Every
`$ref` resolves from those local files; one that does not is an error, never a download.
"""

from __future__ import annotations

import importlib.resources
import json
import re
from typing import Any

from retrain.domain.publication import MODEL_KINDS, PublicationFacts, TensorSpec
from retrain.domain.recommender import ModelType

# Artifact type: how the model directory was written (MLM best practices: name the call).
SAVED_MODEL_ARTIFACT = "tf.saved_model.save"
# A TF Serving version directory has no registered media type; this is the common one.
DIRECTORY_MEDIA_TYPE = "inode/directory"
MARKDOWN_MEDIA_TYPE = "text/markdown"
# Extension schemas are published at https://stac-extensions.github.io/<name>/v<version>/.
_EXTENSION_URI = "https://stac-extensions.github.io/{name}/{version}/schema.json"

# mlm:architecture: a common name for how each model type is built.
ARCHITECTURES = {
    ModelType.RETRIEVAL: "two-tower",
    ModelType.RANKING: "two-tower rating regression",
    ModelType.MULTITASK: "two-tower multitask (retrieval and rating regression)",
    ModelType.USER_MODULE: "unknown",
}
# mlm:tasks from the schema's enum: retrieval is a nearest-neighbour search of candidates
# for a query, ranking predicts a rating. A user module's task is not known here.
TASKS = {
    ModelType.RETRIEVAL: ["similarity-search"],
    ModelType.RANKING: ["regression"],
    ModelType.MULTITASK: ["similarity-search", "regression"],
    ModelType.USER_MODULE: [],
}
# Config sections that are the model's hyperparameters (the rest is plumbing).
HYPERPARAMETER_SECTIONS = ("model.", "training.", "trainer.")
# TF dtype names the raster extension's data_type enum lacks; anything else unknown: other.
_COMPLEX_TYPES = {"complex64": "cfloat32", "complex128": "cfloat64"}
_RASTER_TYPES = frozenset({"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                           "uint64", "float16", "float32", "float64"})


# mlm:name's pattern in the MLM schema: a letter first, a letter or digit last, 3 chars or more.
_MLM_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9_.\-\s]+[a-zA-Z0-9]$")


def mlm_name(model_name: str) -> str:
    """mlm:name of a registered model: its name where the MLM schema's pattern allows it,
    else `model <name>` without trailing - or _ (model names like `cc`, `7up`, `ranker-`
    are valid here, not there)."""
    if _MLM_NAME.match(model_name):
        return model_name
    return f"model {model_name.rstrip('-_')}"


class StacItemError(ValueError):
    """A STAC Item failed schema validation; the message lists every failure, one a line."""

    def __init__(self, errors: list[str]):
        super().__init__("STAC Item is not valid:\n" + "\n".join(errors))
        self.errors = errors


# -- building ----------------------------------------------------------------------------

def mlm_data_type(dtype: str) -> str:
    """The MLM (raster extension) data_type for a TF dtype name; `other` for string, bool …"""
    if dtype in _RASTER_TYPES:
        return dtype
    return _COMPLEX_TYPES.get(dtype, "other")


def _dim_order(spec: TensorSpec) -> tuple[list[int], list[str]]:
    """MLM shape (-1 for unknown) and dimension names: the batch, then the tensor's own."""
    if spec.shape is None:
        return [-1], ["batch"]
    if not spec.shape:
        return [1], ["value"]
    base = re.sub(r"[^a-z_-]+", "_", spec.name.lower()).strip("_-")
    base = "value" if base in ("", "batch") else base
    rest = len(spec.shape) - 1
    names = [base] if rest == 1 else [f"{base}-{chr(ord('a') + i)}" for i in range(rest)]
    return [-1 if dim is None else dim for dim in spec.shape], ["batch", *names]


def _structure(spec: TensorSpec, kind: type) -> Any:
    from pystac.extensions.raster import DataType

    shape, dim_order = _dim_order(spec)
    return kind.create(shape=shape, dim_order=dim_order,
                       data_type=DataType(mlm_data_type(spec.dtype)))


def _retrain_properties(facts: PublicationFacts) -> dict[str, Any]:
    """Facts of the push a catalogue filters on, under the `retrain:` prefix."""
    return {
        "retrain:model_type": facts.model_type.value,
        "retrain:run_id": facts.run_id,
        "retrain:run_name": facts.run_name,
        "retrain:flow_run_id": facts.flow_run_id,
        "retrain:mlflow_run_id": facts.mlflow_run_id,
        "retrain:registered_version": facts.registered_version,
        "retrain:serving_version": facts.serving_version,
        "retrain:serving_uri": facts.serving_uri,
        "retrain:champion_replaced": facts.champion_version,
        "retrain:forced_reason": facts.forced_reason,
        "retrain:training_data": {
            "uri": facts.training_data_uri,
            "format": facts.training_data_format,
            "rows": {split.name: split.rows for split in facts.splits},
        },
        "retrain:metrics": {
            metric.name: {"value": metric.value, "champion": metric.champion,
                          "delta": None if metric.delta is None else round(metric.delta, 12),
                          "higher_is_better": metric.higher_is_better}
            for metric in sorted(facts.metrics, key=lambda m: m.name)
        },
    }


def stac_item(facts: PublicationFacts, *, model_href: str, card_href: str) -> dict[str, Any]:
    """The pushed model as a STAC 1.1 Item (MLM extension) dict; check it with
    `validate_stac_item`. Input and output describe the serving signature."""
    import pystac
    from pystac.extensions import mlm

    signature = facts.serving_signature()
    if signature is None:
        raise ValueError(f"{facts.title}: no signature to describe as mlm:input/mlm:output")
    tasks = [mlm.TaskType(task) for task in TASKS[facts.model_type]]
    item = pystac.Item(
        id=f"{facts.model_name}-v{facts.registered_version}",
        geometry=None,  # a recommender has no footprint: STAC allows null without a bbox
        bbox=None,
        datetime=facts.pushed_at,
        properties={
            "title": facts.title,
            "description": f"A {MODEL_KINDS[facts.model_type]} from run {facts.run_name}.",
        },
    )
    hyperparameters = {re.sub(r"[^0-9a-zA-Z_.-]", "_", key): value for key, value
                       in facts.set_hyperparameters(HYPERPARAMETER_SECTIONS).items()}
    mlm.MLMExtension.ext(item, add_if_missing=True).apply(
        name=mlm_name(facts.model_name),
        architecture=ARCHITECTURES[facts.model_type],
        tasks=tasks,
        input=[mlm.ModelInput.create(name=spec.name, bands=[],
                                     input=_structure(spec, mlm.InputStructure))
               for spec in signature.inputs],
        output=[mlm.ModelOutput.create(name=spec.name, tasks=tasks,
                                       result=_structure(spec, mlm.ResultStructure))
                for spec in signature.outputs],
        framework="TensorFlow",
        framework_version=facts.framework_version,
        total_parameters=facts.total_parameters,
        pretrained=False,  # trained from scratch: pystac writes mlm:pretrained_source null
        accelerator=mlm.AcceleratorType.AMD64,  # TF Serving on CPU; a GPU is not required
        accelerator_constrained=False,
        hyperparameters=mlm.Hyperparameters.create(**hyperparameters) if hyperparameters
        else None,
    )
    model = pystac.Asset(href=model_href, title=f"SavedModel ({signature.name})",
                         media_type=DIRECTORY_MEDIA_TYPE, roles=["mlm:model", "model", "data"])
    item.add_asset("model", model)
    mlm.AssetGeneralMLMExtension.ext(model, add_if_missing=True).apply(
        artifact_type=SAVED_MODEL_ARTIFACT)
    item.add_asset("model-card", pystac.Asset(href=card_href, title="Model card",
                                              media_type=MARKDOWN_MEDIA_TYPE, roles=["metadata"]))
    item.properties.update(_retrain_properties(facts))
    return item.to_dict(include_self_link=False, transform_hrefs=False)


# -- validating, offline -------------------------------------------------------------------

def local_schemas() -> dict[str, dict[str, Any]]:
    """Every schema available offline, by the URIs it is referenced with."""
    from pystac.validation.local_validator import get_local_schema_cache

    schemas = dict(get_local_schema_cache())
    root = importlib.resources.files("retrain.adapters").joinpath("schemas")
    for extension in root.iterdir():
        if not extension.is_dir():
            continue
        for version in extension.iterdir():
            schema = json.loads(version.joinpath("schema.json").read_text())
            schemas[_EXTENSION_URI.format(name=extension.name, version=version.name)] = schema
            # Its own $id too (processing v1.1.0's says v1.0.0): relative refs resolve there.
            schemas.setdefault(schema.get("$id", "").rstrip("#"), schema)
    schemas.pop("", None)
    return schemas


def _extension_name(uri: str) -> str:
    """`mlm` for https://stac-extensions.github.io/mlm/v1.4.0/schema.json; else the URI."""
    found = re.match(r"https://stac-extensions\.github\.io/([^/]+)/", uri)
    return found.group(1) if found else uri


def _refuse_download(uri: str) -> Any:
    """The registry's retrieve hook: a schema not stored locally is an error, not a fetch."""
    from referencing.exceptions import NoSuchResource

    raise NoSuchResource(ref=uri)


def _error_lines(label: str, validator: Any, instance: dict[str, Any]) -> list[str]:
    from jsonschema.exceptions import best_match

    lines = []
    for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path)):
        # anyOf/oneOf say only "not valid under any"; the closest branch says why.
        leaf = best_match(error.context) if error.context else error
        message = " ".join(leaf.message.split())
        message = message if len(message) <= 300 else message[:297] + "…"
        lines.append(f"[{label}] {leaf.json_path}: {message}")
    return lines


def validate_stac_item(item: dict[str, Any]) -> None:
    """Validate `item` against STAC core and each extension it declares, with no network.

    Raises StacItemError naming every failing path and reason, one a line; an extension
    schema that is not stored locally is a failure too.
    """
    from jsonschema.validators import validator_for
    from referencing import Registry, Resource
    from referencing.exceptions import Unresolvable

    schemas = local_schemas()
    registry = Registry(retrieve=_refuse_download).with_resources(
        (uri, Resource.from_contents(schema)) for uri, schema in schemas.items()
    )
    version = item.get("stac_version")
    core = f"https://schemas.stacspec.org/v{version}/item-spec/json-schema/item.json"
    targets = [("stac-item", core)] + [(_extension_name(uri), uri)
                                       for uri in item.get("stac_extensions", [])]
    errors: list[str] = []
    for label, uri in targets:
        if uri not in schemas:
            errors.append(f"[{label}] $: schema {uri} is not available offline")
            continue
        schema = schemas[uri]
        validator = validator_for(schema)(schema, registry=registry)
        try:
            errors += _error_lines(label, validator, item)
        except Unresolvable as exc:
            errors.append(f"[{label}] $: {getattr(exc, 'ref', exc)} is not available offline")
    if errors:
        raise StacItemError(errors)
