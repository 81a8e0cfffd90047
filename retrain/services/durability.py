"""A run's stores, checked as it starts in a container (rules: retrain/domain/durability.py)."""

from __future__ import annotations

from typing import Any

from retrain.domain.config import PipelineConfig
from retrain.domain.durability import Store, lost_with_container, refusal
from retrain.services.errors import StoresInContainer
from retrain.settings import get_settings

# Work pool types whose flow runs are processes on the worker's machine; every other type
# (kubernetes, docker, ecs, cloud-run, vertex-ai, …) starts a container for each flow run.
PROCESS_POOLS = ("process",)


def container_of(flow_run_id: Any) -> str | None:
    """'work pool <name> (<type>)' when a worker started the flow run in a container of its
    own; None for a process pool, or a flow run no worker started."""
    from retrain.adapters.prefect import prefect_client
    from retrain.adapters.prefect_runs import work_pool_type

    if flow_run_id is None:
        return None
    with prefect_client() as client:
        pool = work_pool_type(client, flow_run_id)
    if pool is None or pool[1] in PROCESS_POOLS:
        return None
    return f"work pool {pool[0]} ({pool[1]})"


def check_stores(config: PipelineConfig, container: str | None, *,
                 registers: bool = True) -> None:
    """In a container, raise StoresInContainer naming each of the run's stores on the
    container's own disk; outside one (`container` None), nothing.

    `registers`: the run also registers and pushes (MLflow, the serving base); a Trainer
    attempt's container writes only its record and the pipeline root.
    """
    if container is None:
        return
    settings = get_settings()
    locations = {Store.RUN_STORE: settings.resolved_database_url(),
                 Store.PIPELINE_ROOT: config.pipeline_root}
    if registers:
        locations |= {Store.MLFLOW_TRACKING: settings.resolved_mlflow_uri(),
                      Store.MLFLOW_ARTIFACTS: settings.resolved_mlflow_artifact_root(),
                      Store.SERVING_BASE: config.pusher.serving_base}
    lost = lost_with_container(locations, settings.persistent_volumes.split(":"))
    if lost:
        raise StoresInContainer(refusal(container, lost))
