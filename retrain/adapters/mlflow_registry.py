"""The model registry (MLflow): who the champion is, and registering a pushed model.

The champion of a model name is the registered version carrying the `champion` alias; the
Evaluator compares every candidate with it; a push, deploy or rollback moves the alias
(`retrain/services/serving.py`).
Promotion uses aliases, never MLflow's deprecated stages.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, Field

from retrain.domain.config import PipelineConfig, is_remote
from retrain.domain.refs import ArtifactRef, EvaluationOutput, PushOutput
from retrain.settings import get_settings

CHAMPION = "champion"
MODEL_URI_TAG = "retrain.model_uri"
SERVING_URI_TAG = "retrain.serving_uri"
SERVING_VERSION_TAG = "retrain.serving_version"
FLOW_RUN_ID_TAG = "retrain.flow_run_id"


F = TypeVar("F", bound=Callable[..., Any])


class RegistryUnavailable(ConnectionError):
    """The MLflow tracking server could not be reached; the message names it (credentials
    masked) and the transport error."""


def _masked(uri: str) -> str:
    return re.sub(r"//[^/@]*@", "//***@", uri)


def raise_if_unreachable(exc: BaseException) -> None:
    """Raise RegistryUnavailable if `exc` is MLflow failing to reach its server (its REST
    client says "API request to … failed with exception …" once its retries are spent)."""
    text = str(exc)
    if "API request to " in text and " failed with exception " in text:
        reason = text.split(" failed with exception ", 1)[1]
        cause = re.search(r"\[Errno [^\]]+\][^\"')]*|Connection refused|timed out", reason)
        raise RegistryUnavailable(
            f"MLflow tracking server at {_masked(get_settings().resolved_mlflow_uri())} could "
            f"not be reached: {cause.group(0) if cause else _masked(reason)[:200]}") from None


def reachable(fn: F) -> F:
    """An MLflow call whose transport failure leaves as RegistryUnavailable."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            return fn(*args, **kwargs)
        except MlflowException as exc:
            raise_if_unreachable(exc)
            raise
    return wrapper  # type: ignore[return-value]


def client() -> Any:
    """An MLflow client on the configured tracking URI."""
    import mlflow
    from mlflow.tracking import MlflowClient

    settings = get_settings()
    uri = settings.resolved_mlflow_uri()
    token = settings.resolved_mlflow_token()
    if token is not None:
        # MLflow's REST client reads it from the environment for every request.
        os.environ["MLFLOW_TRACKING_TOKEN"] = token
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


class Champion(BaseModel):
    """The registered version currently serving for a model name."""

    version: str = Field(description="MLflow registered-model version.")
    model_uri: str = Field(description="Trainer Model artifact it was pushed from.")
    serving_uri: str | None = Field(default=None, description="Pushed serving directory.")
    serving_version: str | None = Field(default=None, description="Serving version directory.")
    mlflow_run_id: str | None = Field(default=None, description="MLflow run that logged it.")


@reachable
def champion(model_name: str) -> Champion | None:
    """The current champion of `model_name`, or None before its first push."""
    from mlflow.exceptions import MlflowException

    mlflow_client = client()
    try:
        version = mlflow_client.get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException as exc:
        raise_if_unreachable(exc)
        return None  # no registered model or no champion yet
    model_uri = version.tags.get(MODEL_URI_TAG)
    if not model_uri:
        return None
    return Champion(
        version=str(version.version),
        model_uri=model_uri,
        serving_uri=version.tags.get(SERVING_URI_TAG),
        serving_version=version.tags.get(SERVING_VERSION_TAG),
        mlflow_run_id=version.run_id,
    )


def warm_up(model_name: str) -> threading.Thread:
    """Look up `model_name`'s champion in a background thread, for its side effects only:
    MLflow imported and its registry store opened (with its schema check) before the
    Evaluator asks for the baseline. On 2 cores that is ~4 s of import and ~2.5 s of store
    start-up, which a fully cached re-run would otherwise wait for. Errors are left to the
    real lookup, which reports them."""

    def look_up() -> None:
        try:
            champion(model_name)
        except Exception:  # reported by the lookup that matters
            logging.getLogger(__name__).debug("MLflow warm-up failed", exc_info=True)

    # numpy's first import sets and then deletes OPENBLAS_MAIN_FREE in os.environ; in this
    # thread it raced a Prefect settings read iterating os.environ (KeyError, a failed run
    # in the 20-run load test). Imported here, before the thread, it cannot.
    import numpy  # noqa: F401

    thread = threading.Thread(target=look_up, name="mlflow-warm-up", daemon=True)
    thread.start()
    return thread


def _experiment_id(mlflow_client: Any, name: str) -> str:
    experiment = mlflow_client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    root = get_settings().resolved_mlflow_artifact_root()
    return mlflow_client.create_experiment(
        name, artifact_location=f"{root.rstrip('/')}/{name}" if root else None)


def _ensure_registered_model(mlflow_client: Any, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        mlflow_client.create_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise


def flat_params(config: PipelineConfig) -> dict[str, str]:
    """The run config flattened to MLflow params (dotted keys, values ≤ 6000 chars)."""
    flat: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else key, item)
        else:
            flat[prefix] = str(value)[:6000]

    walk("", config.model_dump(mode="json", by_alias=True))
    return flat


@reachable
def register_push(
    config: PipelineConfig,
    push: PushOutput,
    model: ArtifactRef,
    evaluation: EvaluationOutput,
    tags: dict[str, str],
) -> PushOutput:
    """Log the pushed model to MLflow and register a new version (the serving service then
    makes it the champion, under the model's lock: `retrain.services.serving.record_push`)."""
    mlflow_client = client()
    experiment_id = _experiment_id(mlflow_client, config.model_name)
    run = mlflow_client.create_run(experiment_id, tags=tags, run_name=tags.get("retrain.run_name"))
    run_id = run.info.run_id
    try:
        for key, value in flat_params(config).items():
            mlflow_client.log_param(run_id, key, value)
        for key, value in evaluation.metrics.items():
            mlflow_client.log_metric(run_id, key, value)
        _log_model_files(mlflow_client, run_id, run.info.artifact_uri, push.serving_uri)
        _ensure_registered_model(mlflow_client, config.model_name)
        version = mlflow_client.create_model_version(
            config.model_name,
            source=f"{run.info.artifact_uri}/model",
            run_id=run_id,
            tags={
                **tags,
                MODEL_URI_TAG: model.uri,
                SERVING_URI_TAG: push.serving_uri or "",
                SERVING_VERSION_TAG: push.version or "",
            },
        )
    except Exception:
        mlflow_client.set_terminated(run_id, status="FAILED")
        raise
    mlflow_client.set_terminated(run_id, status="FINISHED")
    return push.model_copy(
        update={"mlflow_run_id": run_id, "registered_version": str(version.version)}
    )


class RegistryState(BaseModel):
    """What the registry says of a model name: its versions and which one serves."""

    versions: list[str] = Field(description="Registered versions, oldest first.")
    champion: str | None = Field(description="Version carrying the champion alias, if any.")
    flow_run_versions: dict[str, str] = Field(
        description="Prefect flow run id (the retrain.flow_run_id tag) → version it pushed."
    )

    @property
    def latest(self) -> str | None:
        """The newest registered version."""
        return self.versions[-1] if self.versions else None


@reachable
def registry_state(model_name: str) -> RegistryState:
    """Versions and champion of `model_name` (empty when it was never registered)."""
    mlflow_client = client()
    found = mlflow_client.search_model_versions(f"name = '{model_name}'")
    versions = sorted(found, key=lambda v: int(v.version))
    from mlflow.exceptions import MlflowException

    try:  # version searches do not carry aliases: ask for the alias itself
        champion_version = str(
            mlflow_client.get_model_version_by_alias(model_name, CHAMPION).version)
    except MlflowException as exc:
        raise_if_unreachable(exc)
        champion_version = None
    return RegistryState(
        versions=[str(v.version) for v in versions],
        champion=champion_version,
        flow_run_versions={v.tags[FLOW_RUN_ID_TAG]: str(v.version) for v in versions
                           if v.tags.get(FLOW_RUN_ID_TAG)},
    )


@reachable
def delete_version(model_name: str, version: str) -> None:
    """Remove one registered version (never the champion: callers check first)."""
    client().delete_model_version(model_name, version)


class VersionInfo(BaseModel):
    """One registered version, as the Pusher tagged it."""

    version: str = Field(description="MLflow registered-model version.")
    serving_uri: str | None = Field(description="The serving version directory it was pushed to.")
    serving_version: str | None = Field(description="That directory's name (unix seconds).")
    mlflow_run_id: str | None = Field(description="MLflow run that logged it.")
    flow_run_id: str | None = Field(description="Prefect flow run of the push.")


@reachable
def version_info(model_name: str, version: str) -> VersionInfo | None:
    """Registered version `version` of `model_name`, or None if there is no such version."""
    from mlflow.exceptions import MlflowException

    try:
        found = client().get_model_version(model_name, version)
    except MlflowException as exc:
        raise_if_unreachable(exc)
        return None
    return VersionInfo(version=str(found.version), serving_uri=found.tags.get(SERVING_URI_TAG),
                       serving_version=found.tags.get(SERVING_VERSION_TAG),
                       mlflow_run_id=found.run_id, flow_run_id=found.tags.get(FLOW_RUN_ID_TAG))


@reachable
def set_champion(model_name: str, version: str) -> None:
    """Move the champion alias of `model_name` to `version`."""
    client().set_registered_model_alias(model_name, CHAMPION, version)


def _log_model_files(mlflow_client: Any, run_id: str, artifact_uri: str, model_dir: str) -> None:
    """The pushed model's files under the run's `model/`. MLflow logs local directories only
    (given gs://, it walks nothing and logs nothing): an object-store model is copied inside
    the store when the run's artifacts live there too, else fetched to a temporary directory."""
    if not is_remote(model_dir):
        mlflow_client.log_artifacts(run_id, model_dir, artifact_path="model")
        return
    import tempfile

    import fsspec

    fs, source = fsspec.core.url_to_fs(model_dir)
    protocol = model_dir.split("://", 1)[0]
    if artifact_uri.startswith(f"{protocol}://"):
        target = fs._strip_protocol(f"{artifact_uri.rstrip('/')}/model")
        for path in fs.find(source):
            fs.copy(path, f"{target}/{path[len(source.rstrip('/')) + 1:]}")
        return
    with tempfile.TemporaryDirectory(prefix="retrain-model-") as local:
        fs.get(f"{source.rstrip('/')}/", local, recursive=True)
        mlflow_client.log_artifacts(run_id, local, artifact_path="model")


@reachable
def log_files(run_id: str, paths: list[str], artifact_path: str) -> None:
    """Log local files to an MLflow run under `artifact_path`."""
    mlflow_client = client()
    for path in paths:
        mlflow_client.log_artifact(run_id, path, artifact_path=artifact_path)
