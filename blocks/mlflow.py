"""MlflowServer: the MLflow tracking server runs log to and register models in."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr, field_validator


class MlflowServer(Block):
    """A remote MLflow tracking server (and model registry), with its access token."""

    _block_type_name = "retrain MLflow server"
    _block_type_slug = "retrain-mlflow"
    _description = "The MLflow tracking server retrain's runs log to and register models in."

    tracking_uri: str = Field(
        description="Tracking URI, e.g. https://mlflow.example.com (no credentials in it: "
        "put the token below).")
    token: SecretStr | None = Field(
        default=None, description="Bearer token for the server (MLFLOW_TRACKING_TOKEN); "
        "empty for a server without authentication.")
    artifact_root: str | None = Field(
        default=None, description="Artifact root of experiments retrain creates, e.g. "
        "gs://bucket/mlartifacts; empty: the server's default.")

    @field_validator("tracking_uri")
    @classmethod
    def _no_credentials_in_the_uri(cls, value: str) -> str:
        netloc = value.split("://", 1)[-1].split("/", 1)[0]
        if "@" in netloc:
            raise ValueError("tracking_uri holds credentials (user:password@); put the "
                             "token in the token field")
        return value
