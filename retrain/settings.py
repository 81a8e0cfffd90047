"""Process-wide settings: one pydantic-settings class, one env prefix (RETRAIN_)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr
from pydantic_settings import BaseSettings, SettingsConfigDict


class BlockSettingError(ValueError):
    """A `RETRAIN_*_BLOCK` setting names no block of its type."""


# MLflow tracking URIs of a server, which has an artifact store of its own.
_MLFLOW_SERVERS = ("http://", "https://", "databricks")


class RetrainSettings(BaseSettings):
    """Where the embedded default keeps its state; every value can be overridden by env."""

    model_config = SettingsConfigDict(env_prefix="RETRAIN_", extra="ignore")
    _blocks: dict[str, Any] = PrivateAttr(default_factory=dict)

    home: Path = Field(
        default=Path(".retrain"),
        description="Root of the embedded default: pipeline root, serving dir, MLflow store.",
    )
    pipeline_root: str | None = Field(
        default=None,
        description="Default pipeline root (local dir or gs://); defaults to <home>/pipelines.",
    )
    serving_base: str | None = Field(
        default=None,
        description="Default base of pushed models (local dir or gs://); defaults to <home>/serving.",
    )
    mlflow_tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking URI; defaults to a SQLite store under <home>.",
    )
    mlflow_artifact_root: str | None = Field(
        default=None,
        description="Artifact root for MLflow experiments this process creates; defaults to <home>/mlartifacts.",
    )

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the run-record store, e.g. "
        "postgresql+psycopg://user@host/retrain; defaults to SQLite at <home>/state.db.",
    )

    database_block: str | None = Field(
        default=None,
        description="A `retrain-state-store` block (blocks/state_store.py) to take the "
        "state store's URL and password from, by name or `retrain-state-store/<name>`; "
        "replaces database_url.",
    )
    mlflow_block: str | None = Field(
        default=None,
        description="A `retrain-mlflow` block (blocks/mlflow.py) to take the MLflow tracking "
        "URI, token and artifact root from; replaces mlflow_tracking_uri and "
        "mlflow_artifact_root.",
    )
    gcs_block: str | None = Field(
        default=None,
        description="A `retrain-gcs` block (blocks/gcs.py) whose key, project and endpoint "
        "every GCS client of a run uses; without it, Application Default Credentials.",
    )

    persistent_volumes: str = Field(
        default="",
        description="Colon-separated directories that are volumes a container (a Kubernetes "
        "pod) keeps: a PersistentVolumeClaim or hostPath mount. A run a worker started in a "
        "container refuses to start while its run store, MLflow store, pipeline root or "
        "serving base is a local path under none of them: the container's own disk is "
        "deleted with it (retrain/domain/durability.py).",
    )

    local_server_port: int = Field(
        default=4200, ge=1, le=65535,
        description="Port of the embedded default's long-lived Prefect server (UI and API on "
        "127.0.0.1), started in the background by `make demo` when none answers there.",
    )

    schedule_base_deployment: str = Field(
        default="training-pipeline/manual",
        description="Deployment (from prefect.yaml) whose work pool, job variables and pull "
        "steps each schedule's own deployment copies.",
    )

    trainer_poll_seconds: float = Field(
        default=5.0, gt=0, le=300,
        description="How often a run whose Trainer runs as its own flow run (gpu.deployment) "
        "checks that flow run's state and its pod's scheduling events.",
    )

    trainer_cancel_wait_seconds: float = Field(
        default=360.0, ge=0, le=3600,
        description="How long a given-up Trainer attempt (e.g. unschedulable) may take to end "
        "Cancelled before the next is submitted. Prefect 3.8.8's Kubernetes worker deletes "
        "the Job of a cancelled run whose pod never started only once the server's "
        "CANCELLING timeout passes (PREFECT_SERVER_SERVICES_CANCELLATION_CLEANUP_CANCELLING_"
        "TIMEOUT_SECONDS, default 300).",
    )

    heartbeat_seconds: float = Field(
        default=30.0, gt=0, le=600,
        description="How often a running training flow run writes its heartbeat to its record.",
    )
    heartbeat_timeout_seconds: float = Field(
        default=180.0, gt=0, le=86400,
        description="A running record not heard from for this long lost its process (a killed "
        "worker or node): the overlap policy ignores it and `retrain runs reconcile` ends it "
        "crashed.",
    )
    pending_timeout_seconds: float = Field(
        default=900.0, gt=0, le=86400,
        description="A flow run Pending this long (submitted, its process or pod never "
        "started) is ended crashed by `retrain runs reconcile`.",
    )
    overlap_poll_seconds: float = Field(
        default=5.0, gt=0, le=300,
        description="How often a run queued by its model's overlap policy looks again.",
    )
    api_retries: int = Field(
        default=7, ge=0, le=12,
        description="Retries of a Prefect API call answered 429/500/502/503 (e.g. SQLite's "
        "'database is locked', a PostgreSQL statement timeout) or cut off, with exponential "
        "backoff (2, 4, 8 … s); sets PREFECT_CLIENT_MAX_RETRIES for retrain's own clients.",
    )

    def block(self, setting: str) -> Any:
        """The block a `*_block` setting names, loaded once from the Prefect API; None
        when the setting is not set. A missing block is one BlockSettingError."""
        name = getattr(self, setting)
        if not name:
            return None
        if setting not in self._blocks:
            import blocks

            cls = {"database_block": blocks.StateStoreDatabase, "mlflow_block": blocks.MlflowServer,
                   "gcs_block": blocks.GcsConnection}[setting]
            slug = cls.get_block_type_slug()
            document = name.split("/", 1)[1] if name.startswith(f"{slug}/") else name
            if "/" in document:
                raise BlockSettingError(
                    f"RETRAIN_{setting.upper()}={name}: not a {slug} block; give "
                    f"<name> or {slug}/<name>")
            try:
                self._blocks[setting] = cls.load(document)
            except ValueError:
                raise BlockSettingError(
                    f"RETRAIN_{setting.upper()}={name}: the Prefect API has no {slug} block "
                    f"named {document!r}; create it (UI: Blocks, after `retrain blocks "
                    "register`) or unset the setting") from None
        return self._blocks[setting]

    def resolved_database_url(self) -> str:
        """The state store's SQLAlchemy URL (with a block's password: never log it)."""
        block = self.block("database_block")
        if block is not None:
            return block.sqlalchemy_url()
        return self.database_url or f"sqlite:///{(self.home / 'state.db').absolute()}"

    def resolved_pipeline_root(self) -> str:
        """The pipeline root to use when a run config does not name one."""
        return self.pipeline_root or str((self.home / "pipelines").absolute())

    def resolved_serving_base(self) -> str:
        """The serving base to use when a run config does not name one."""
        return self.serving_base or str((self.home / "serving").absolute())

    def resolved_mlflow_uri(self) -> str:
        """The MLflow tracking URI to log and register with."""
        block = self.block("mlflow_block")
        if block is not None:
            return block.tracking_uri
        return self.mlflow_tracking_uri or f"sqlite:///{(self.home / 'mlflow.db').absolute()}"

    def resolved_mlflow_token(self) -> str | None:
        """The MLflow block's token; None without one (MLflow then reads
        MLFLOW_TRACKING_TOKEN itself)."""
        block = self.block("mlflow_block")
        if block is None or block.token is None:
            return None
        return block.token.get_secret_value()

    def resolved_mlflow_artifact_root(self) -> str | None:
        """Where MLflow stores artifacts of experiments created here; None: the tracking
        server's default (a server's own artifact store, e.g. mlflow-artifacts:/)."""
        block = self.block("mlflow_block")
        root = block.artifact_root if block is not None else self.mlflow_artifact_root
        if root:
            return root
        if self.resolved_mlflow_uri().startswith(_MLFLOW_SERVERS):
            return None
        # A file or database store has no server to keep artifacts: MLflow's own default
        # would be ./mlruns in whatever directory the process runs in.
        return str((self.home / "mlartifacts").absolute())

    def gcs_environment(self) -> dict[str, str]:
        """Environment for every GCS client of this process and its workers: the GCS
        block's (blocks/gcs.py), else nothing (Application Default Credentials)."""
        block = self.block("gcs_block")
        return block.environment() if block is not None else {}


@lru_cache(maxsize=1)
def get_settings() -> RetrainSettings:
    """The settings of this process, read once from the environment."""
    return RetrainSettings()


# gcsfs ≥ 2026.x asks a gRPC control API for each bucket's layout (for hierarchical and zonal
# buckets) before its first call, retrying for 60 s where that API is unreachable (an emulator,
# no credentials), and again on every call after a failure. retrain's buckets are flat; a user
# who needs that layout sets the variable to true. Read when gcsfs is imported.
_GCS_CLIENT_DEFAULTS = {"GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}


def apply_gcs_connection() -> None:
    """Point this process's GCS clients, and the processes it starts (Beam workers), at
    RETRAIN_GCS_BLOCK's connection; without the setting, only the client defaults above
    (credentials from ADC)."""
    for key, value in _GCS_CLIENT_DEFAULTS.items():
        os.environ.setdefault(key, value)
    os.environ.update(get_settings().gcs_environment())
