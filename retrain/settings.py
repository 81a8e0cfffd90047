"""Process-wide settings: one pydantic-settings class, one env prefix (RETRAIN_)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RetrainSettings(BaseSettings):
    """Where the embedded default keeps its state; every value can be overridden by env."""

    model_config = SettingsConfigDict(env_prefix="RETRAIN_", extra="ignore")

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

    def resolved_database_url(self) -> str:
        """The state store's SQLAlchemy URL."""
        return self.database_url or f"sqlite:///{(self.home / 'state.db').absolute()}"

    def resolved_pipeline_root(self) -> str:
        """The pipeline root to use when a run config does not name one."""
        return self.pipeline_root or str((self.home / "pipelines").absolute())

    def resolved_serving_base(self) -> str:
        """The serving base to use when a run config does not name one."""
        return self.serving_base or str((self.home / "serving").absolute())

    def resolved_mlflow_uri(self) -> str:
        """The MLflow tracking URI to log and register with."""
        return self.mlflow_tracking_uri or f"sqlite:///{(self.home / 'mlflow.db').absolute()}"

    def resolved_mlflow_artifact_root(self) -> str:
        """Where MLflow stores artifacts of experiments created here."""
        return self.mlflow_artifact_root or str((self.home / "mlartifacts").absolute())


@lru_cache(maxsize=1)
def get_settings() -> RetrainSettings:
    """The settings of this process, read once from the environment."""
    return RetrainSettings()
