"""Prefect task of the overlap policy: the run goes, waits for the model's earlier runs, or
ends skipped or cancelled (`retrain/services/overlap.py`)."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from retrain.domain.overlap import OverlapVerdict


@task(name="check-overlap", cache_policy=NO_CACHE)
def check_overlap() -> OverlapVerdict:
    """Apply the run config's `overlap` policy against the model's other active runs; a
    queued run waits here (and says what for) until they have ended."""
    from retrain.services.overlap import wait_for_admission

    verdict = wait_for_admission(str(flow_run.id))
    if verdict.reason:
        print(verdict.reason)
    return verdict
