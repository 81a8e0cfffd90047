"""Prefect blocks for retrain's connections: GCS, the MLflow server, the state store.

Notifications use Prefect's own notification blocks (deployments/automations.py).
"""

from blocks.gcs import GcsConnection
from blocks.mlflow import MlflowServer
from blocks.state_store import StateStoreDatabase

BLOCK_TYPES = (GcsConnection, MlflowServer, StateStoreDatabase)

__all__ = ["BLOCK_TYPES", "GcsConnection", "MlflowServer", "StateStoreDatabase"]
