"""The `reconcile-runs` flow: no training run lost, without depending on the automations.

Deployed as `reconcile-runs/every-5-minutes` (prefect.yaml). Each run compares the state
store with the Prefect API (`retrain/services/reconcile.py`): a flow run that crashed at
submission, whose pod never started or whose worker was killed gets its record, with
Prefect's own message and no stage blamed that did not run; its schedule's statistics
count it. `retrain runs reconcile` does the same from a terminal.
"""

from __future__ import annotations

from prefect import flow

from retrain.services.reconcile import Reconciled


@flow(name="reconcile-runs", log_prints=True)
def reconcile_runs(lookback_hours: float = 72.0) -> list[Reconciled]:
    """Record every training flow run that ended, or died, without its record saying so.

    Args:
        lookback_hours: How far back to look for flow runs and records to compare.
    """
    from retrain.services.reconcile import reconcile

    found = reconcile(lookback_hours=lookback_hours)
    for item in found:
        print(f"{item.run_name}: {item.status.value} (flow run {item.flow_run_id}): "
              f"{item.message or ''}")
    print(f"reconciled {len(found)} run(s)")
    return found
