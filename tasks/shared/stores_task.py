"""Prefect task of the stores check: the first step of a run a worker started in a container."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from retrain.domain.config import PipelineConfig


@task(name="check-stores", cache_policy=NO_CACHE)
def check_stores(config: PipelineConfig, registers: bool = True) -> None:
    """Fail the run before anything runs while a store of it would be deleted with its
    container (`retrain.services.durability`); elsewhere, nothing.

    Args:
        config: The run's config (its pipeline root and serving base).
        registers: The run registers and pushes too (the training flow; not a Trainer pod).
    """
    from retrain.services import durability

    container = durability.container_of(flow_run.get_id())
    durability.check_stores(config, container, registers=registers)
