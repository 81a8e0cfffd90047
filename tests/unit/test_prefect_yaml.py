"""prefect.yaml smoke test: every deployment imports, validates and targets a defined pool.

`prefect deploy` only warns about a prefect.yaml it cannot parse and skips it, falls back
to a placeholder flow when an entrypoint fails to import, and a bad default parameter
only shows when a run starts on a worker. These tests catch all three before a deploy.
"""

from __future__ import annotations

import functools
import inspect
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import prefect
import pytest
import yaml
from prefect import Flow
from prefect.cli.deploy._models import PrefectYamlModel  # the model `prefect deploy` uses
from prefect.flows import load_flow_from_entrypoint
from prefect.utilities.callables import parameter_schema
from prefect.utilities.schema_tools import validate

REPO_ROOT = Path(__file__).resolve().parents[2]
PROJECT: dict[str, Any] = yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())
DEPLOYMENTS: list[dict[str, Any]] = PROJECT.get("deployments") or []
IDS = [str(deployment.get("name")) for deployment in DEPLOYMENTS]

# Flow modules must not import the TensorFlow stack (STYLE: heavy imports stay in tasks).
HEAVY_PREFIXES = ("tensorflow", "tfx", "tf_keras", "keras")
# What "retrain: training run failed" passes (deployments/automations.py), once rendered.
AUTOMATION_PARAMETERS = {"flow_run_id": "6b7c1b0e-4a56-4c8e-9a57-2b1d2c3e4f50",
                         "state_name": "Crashed", "message": "Process exited with status code: -9"}


# What the Run form of an operation on serving asks for (flows/model_operations.py).
SERVING_PARAMETERS = {"model_name": "demo-ratings", "version": "2", "run_id": "0f3a9c",
                      "reason": "v3 regressed on new buyers"}


def trainer_request() -> dict[str, Any]:
    """What the training flow passes the gpu-trainer deployment (tasks/trainer/remote.py)."""
    from retrain.domain.examples import recommender_config
    from retrain.domain.refs import ArtifactRef, StageOutput
    from tasks.trainer.request import TrainerRequest

    config = recommender_config(REPO_ROOT / ".retrain" / "data", "retrieval", gpu={
        "enabled": True, "count": 4, "type": "nvidia-tesla-t4",
        "deployment": "gpu-trainer/kubernetes", "fallback": [{"type": "nvidia-l4", "count": 4}]})
    def output(stage: str, **types: str) -> StageOutput:
        return StageOutput(stage=stage, fingerprint="f" * 64, artifacts={
            key: ArtifactRef(type_name=type_name, uri=f"/pipelines/{stage}/{key}")
            for key, type_name in types.items()})
    from tasks.shared.caching import StagePlan

    plan = StagePlan.for_stage(config, "Trainer", "f" * 64)
    request = TrainerRequest(
        config=config, plan=plan, gpu=config.gpu.options[1], attempt=2,
        transform=output("Transform", transformed_examples="Examples",
                         transform_graph="TransformGraph"),
        schema=output("SchemaGen", schema="Schema"),
    )
    return request.model_dump(mode="json", by_alias=True)


@functools.lru_cache(maxsize=None)
def load_flow(entrypoint: str) -> Flow[Any, Any]:
    """Import an entrypoint as a worker does: a failed import raises, no placeholder flow."""
    return load_flow_from_entrypoint(entrypoint, use_placeholder_flow=False)


def test_project_file_is_what_prefect_deploy_accepts() -> None:
    PrefectYamlModel.model_validate(PROJECT)
    assert PROJECT["name"] == "retrain"
    # prefect is pinned in requirements.lock; the project file must follow it.
    assert PROJECT["prefect-version"] == prefect.__version__
    assert DEPLOYMENTS, "prefect.yaml defines no deployments"


def test_deployment_names_are_unique_and_include_manual() -> None:
    names = [f"{load_flow(d['entrypoint']).name}/{d['name']}" for d in DEPLOYMENTS]
    assert len(names) == len(set(names)), names
    assert "training-pipeline/manual" in names


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=IDS)
def test_entrypoint_is_a_flow(deployment: dict[str, Any]) -> None:
    assert isinstance(load_flow(deployment["entrypoint"]), Flow)


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=IDS)
def test_entrypoint_does_not_import_tensorflow(deployment: dict[str, Any]) -> None:
    # A fresh interpreter, so modules imported by other tests cannot hide or cause a hit.
    # It inherits tests/conftest.py's environment (PREFECT_HOME in the session temp dir).
    code = (
        "import json, sys\n"
        "from prefect.flows import load_flow_from_entrypoint\n"
        f"load_flow_from_entrypoint({deployment['entrypoint']!r}, use_placeholder_flow=False)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    modules = json.loads(done.stdout.strip().splitlines()[-1])
    heavy = [m for m in modules if m.split(".")[0].startswith(HEAVY_PREFIXES)]
    assert not heavy, f"{deployment['entrypoint']} imports {heavy[:10]}"


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=IDS)
def test_parameters_validate(
    deployment: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every deployment runs without --params (its defaults pass both Prefect checks), except
    the automation's, which runs with the parameters the automation renders."""
    flow = load_flow(deployment["entrypoint"])
    parameters = deployment.get("parameters") or {}
    if "automation" in deployment.get("tags", []):
        parameters = {**parameters, **AUTOMATION_PARAMETERS}
    if "trainer" in deployment.get("tags", []):
        parameters = {**parameters, "request": trainer_request()}
    if "serving" in deployment.get("tags", []):  # what a person fills in on the Run form
        wanted = set(inspect.signature(flow.fn).parameters)
        parameters = {key: value for key, value in SERVING_PARAMETERS.items() if key in wanted}
    # The server's check when a run is created: the JSON schema `prefect deploy` uploads.
    validate(parameters, parameter_schema(flow.fn).model_dump(exclude_unset=True),
             raise_on_error=True)
    # The engine's check when the run starts: builds the pydantic models, which check that
    # local module files exist. The worker runs from the repo root (see prefect.yaml `pull`).
    monkeypatch.chdir(REPO_ROOT)
    flow.validate_parameters(parameters)


def _undescribed(schema: dict[str, Any]) -> list[str]:
    """Fields of a parameter schema (top level and every model in it) without a description."""
    models = {"": schema, **(schema.get("definitions") or {})}
    return [f"{model}.{name}".lstrip(".") for model, spec in models.items()
            for name, field in (spec.get("properties") or {}).items()
            if not field.get("description")]


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=IDS)
def test_run_form_describes_every_field(deployment: dict[str, Any]) -> None:
    """The Run form the UI renders from the deployment's schema: every parameter, and every
    field of every model in it (PipelineConfig's 30-odd models), carries its description."""
    schema = parameter_schema(load_flow(deployment["entrypoint"]).fn).model_dump_for_openapi()
    assert not _undescribed(schema), f"no description on the Run form: {_undescribed(schema)}"


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=IDS)
def test_work_pool_is_defined(deployment: dict[str, Any]) -> None:
    pools = (PROJECT.get("definitions") or {}).get("work_pools") or {}
    defined = {pool["name"] for pool in pools.values()}
    assert (deployment.get("work_pool") or {}).get("name") in defined, sorted(defined)


def test_manual_deployment_is_the_synthetic_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    """training-pipeline/manual trains what `flows.demo --model user-module` trains
    (retrain/domain/examples.py)."""
    from retrain.domain.config import PipelineConfig
    from retrain.domain.examples import rating_config

    (manual,) = [d for d in DEPLOYMENTS if d["name"] == "manual"
                 and d["entrypoint"].startswith("flows/training_pipeline.py")]
    monkeypatch.chdir(REPO_ROOT)
    config = PipelineConfig.model_validate(manual["parameters"]["config"])
    expected = rating_config(
        ".retrain/data/interactions-10000-seed0",
        transform={"module_file": "synthetic/modules/rating_model.py"},
    )
    assert config == expected


def test_recommender_deployment_is_the_retrieval_example(monkeypatch: pytest.MonkeyPatch) -> None:
    """training-pipeline/recommender trains what `make demo` trains: recommender_config() from
    retrain/domain/examples.py."""
    from retrain.domain.config import PipelineConfig
    from retrain.domain.examples import recommender_config

    (deployment,) = [d for d in DEPLOYMENTS if d["name"] == "recommender"]
    monkeypatch.chdir(REPO_ROOT)
    config = PipelineConfig.model_validate(deployment["parameters"]["config"])
    assert config == recommender_config(".retrain/data/interactions-10000-seed0", "retrieval")
