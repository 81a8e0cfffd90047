"""Prefect task of the late-run policy: an early step of a scheduled training run."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import deployment, flow_run

from retrain.domain.schedule.rules import SlotCheck


@task(name="check-schedule-slot", cache_policy=NO_CACHE)
def check_schedule_slot() -> SlotCheck:
    """Run or skip this flow run by its schedule's late-run policy; record its lateness.

    Runs not started by a schedule's deployment always go ahead
    (`retrain.services.schedules.check_slot_of_flow_run`).
    """
    from retrain.services.schedules import check_slot_of_flow_run

    deployment_id = deployment.id
    if not deployment_id:
        return SlotCheck(skip=False)
    verdict = check_slot_of_flow_run(str(flow_run.id), deployment_id,
                                     flow_run.scheduled_start_time)
    if verdict.skip:
        print(verdict.reason)
    return verdict
