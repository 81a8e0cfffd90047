"""Prefect task of the late-run policy: the first step of a scheduled training run."""

from __future__ import annotations

import datetime as dt

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import deployment, flow_run

from retrain.domain.schedule.slots import SlotCheck, check_slot
from retrain.domain.clock import utcnow


def _auto_scheduled() -> bool:
    """Whether the Prefect scheduler (not a person or trigger-now) made this flow run."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return bool(client.read_flow_run(flow_run.id).auto_scheduled)


@task(name="check-schedule-slot", cache_policy=NO_CACHE)
def check_schedule_slot() -> SlotCheck:
    """Run or skip this flow run by its schedule's late-run policy; record its lateness.

    Runs not started by a schedule's deployment always go ahead.
    """
    from retrain.store import runs, schedules
    from retrain.store.sessions import sessions

    deployment_id = deployment.id
    if not deployment_id:
        return SlotCheck(skip=False)
    with sessions().begin() as session:
        schedule = schedules.schedule_for_deployment(session, str(deployment_id))
        if schedule is None:
            return SlotCheck(skip=False)
        slot = flow_run.scheduled_start_time
        verdict = check_slot(
            dt.datetime.fromtimestamp(slot.timestamp(), tz=dt.timezone.utc) if slot else None,
            utcnow(), schedule.max_lateness_seconds,
            schedule_status=schedule.status, auto_scheduled=_auto_scheduled(),
        )
        run = runs.run_for_flow_run(session, str(flow_run.id))
        if run is not None:
            run.lateness_seconds = verdict.lateness_seconds
    if verdict.skip:
        print(verdict.reason)
    return verdict
