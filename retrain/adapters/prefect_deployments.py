"""A retraining schedule as a Prefect deployment: create or update, pause, resume, run, delete.

Each schedule is its own deployment of the training flow, `training-pipeline/<slug>`,
holding the frozen config as its parameters and exactly one deployment schedule whose slug
is the schedule's slug. Its infrastructure (work pool and queue, job variables, pull steps,
entrypoint, parameter schema) is copied from a base deployment that `prefect deploy`
created from prefect.yaml (`training-pipeline/manual` by default), so a scheduled run runs
exactly where a manual one does.

Prefect upserts deployments by (flow, name) and replaces their schedules, deleting future
auto-scheduled runs first (`prefect.server.models.deployments.create_deployment`), so
applying a schedule again never duplicates it or its runs. Pausing a deployment deletes its
auto-scheduled runs still in Scheduled; resuming lets the scheduler create them again.
Callers pass a synchronous client (`retrain.adapters.prefect.prefect_client`).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from retrain.domain.clock import utcnow
from retrain.domain.overlap import OverlapPolicy
from retrain.domain.schedule.spec import ScheduleSpec, describe
from retrain.domain.schedule.translate import to_prefect_schedule

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.responses import DeploymentResponse

FLOW_NAME = "training-pipeline"
TAGS = ("retrain", "schedule")
# How long a scheduler pass that began before a pause may still be writing its runs.
SETTLE_S = 3.0


class ScheduledDeployment(BaseModel):
    """What Prefect holds for one schedule."""

    model_config = ConfigDict(frozen=True)

    id: UUID = Field(description="Prefect deployment id.")
    name: str = Field(description="`training-pipeline/<slug>`.")
    paused: bool = Field(description="Whether the deployment (so its schedule) is paused.")
    schedule_slugs: list[str] = Field(description="Slugs of its deployment schedules.")


def deployment_name(slug: str) -> str:
    """The full `<flow>/<deployment>` name of a schedule's deployment."""
    return f"{FLOW_NAME}/{slug}"


def read_base(client: SyncPrefectClient, name: str) -> DeploymentResponse:
    """The base deployment, or LookupError saying how to create it."""
    from prefect.exceptions import ObjectNotFound

    try:
        return client.read_deployment_by_name(name)
    except ObjectNotFound:
        raise LookupError(
            f"no Prefect deployment named {name!r} to take the schedule's infrastructure "
            f"from; run `prefect deploy --all` from the repo root (see deployments/README.md)"
        ) from None


def apply(
    client: SyncPrefectClient, base: DeploymentResponse, *, slug: str, spec: ScheduleSpec,
    config: dict[str, Any], paused: bool, description: str | None = None,
    tags: tuple[str, ...] = (),
) -> UUID:
    """Create or update the schedule's deployment (idempotent); returns its id.

    Its concurrency limit is the base deployment's (the global limit of training runs),
    except that a config whose `overlap` is `queue` gets a limit of one with Prefect's
    ENQUEUE collision strategy: its extra runs wait in AwaitingConcurrencySlot without a
    process. (Skip and cancel are decided inside the flow, which records the reason.)
    """
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.client.schemas.objects import ConcurrencyLimitStrategy, ConcurrencyOptions

    schedule = DeploymentScheduleCreate(schedule=to_prefect_schedule(spec), active=True,
                                        slug=slug)
    text = describe(spec) + (f"\n\n{description}" if description else "")
    return client.create_deployment(
        flow_id=base.flow_id,
        name=slug,
        schedules=[schedule],
        parameters={"config": config},
        description=text,
        work_pool_name=base.work_pool_name,
        work_queue_name=base.work_queue_name,
        job_variables=dict(base.job_variables or {}),
        tags=sorted({*TAGS, *tags}),
        path=base.path,
        entrypoint=base.entrypoint,
        parameter_openapi_schema=base.parameter_openapi_schema,
        enforce_parameter_schema=base.enforce_parameter_schema,
        pull_steps=base.pull_steps,
        paused=paused,
        **concurrency_of(base, config, ConcurrencyLimitStrategy, ConcurrencyOptions),
    )


def concurrency_of(base: DeploymentResponse, config: dict[str, Any], strategies: Any,
                   options: Any) -> dict[str, Any]:
    """`create_deployment`'s concurrency arguments for a schedule of `config`."""
    if config.get("overlap") == OverlapPolicy.QUEUE.value:
        return {"concurrency_limit": 1,
                "concurrency_options": options(collision_strategy=strategies.ENQUEUE)}
    limit = base.global_concurrency_limit.limit if base.global_concurrency_limit else None
    return {"concurrency_limit": limit, "concurrency_options": base.concurrency_options}


def read(client: SyncPrefectClient, deployment_id: UUID | str) -> ScheduledDeployment | None:
    """The schedule's deployment as Prefect has it, or None if it is gone."""
    from prefect.exceptions import ObjectNotFound

    try:
        found = client.read_deployment(deployment_id)
    except ObjectNotFound:
        return None
    return ScheduledDeployment(
        id=found.id, name=f"{FLOW_NAME}/{found.name}", paused=bool(found.paused),
        schedule_slugs=[s.slug or "" for s in found.schedules],
    )


def pause(client: SyncPrefectClient, deployment_id: UUID | str) -> int:
    """Pause the deployment: its scheduled runs are deleted and no new ones are made.

    Prefect deletes the auto-scheduled runs itself, but a scheduler pass (the main loop or
    the recent-deployments loop) that read the deployment just before the pause inserts
    its runs just after (seen on 3.8.8 right after a schedule was re-applied). Such strays
    are deleted here, once at once and once after `SETTLE_S`, by which time a pass that
    started before the pause has written. Returns how many strays were deleted. A run
    that still slips through is skipped by the flow's slot check, which refuses
    auto-scheduled runs of a schedule that is not active.
    """
    client.pause_deployment(deployment_id)
    deleted = _delete_auto_scheduled(client, deployment_id)
    time.sleep(SETTLE_S)
    return deleted + _delete_auto_scheduled(client, deployment_id)


def _delete_auto_scheduled(client: SyncPrefectClient, deployment_id: UUID | str) -> int:
    strays = [run for run in _scheduled_runs(client, deployment_id) if run.auto_scheduled]
    for flow_run in strays:
        client.delete_flow_run(flow_run.id)
    return len(strays)


def resume(client: SyncPrefectClient, deployment_id: UUID | str) -> None:
    """Resume the deployment: the scheduler makes its upcoming runs again."""
    client.resume_deployment(deployment_id)


def delete(client: SyncPrefectClient, deployment_id: UUID | str) -> None:
    """Delete the deployment (its finished flow runs stay in Prefect); gone already is fine."""
    from prefect.exceptions import ObjectNotFound

    try:
        client.delete_deployment(deployment_id)
    except ObjectNotFound:
        pass


def run_now(client: SyncPrefectClient, deployment_id: UUID | str) -> UUID:
    """Start a flow run of the deployment now, with its (frozen) parameters.

    The request carries a fresh idempotency key: when the client retries it after an answer
    it could not read (a 500 or a dropped connection after the server committed), the server
    returns the run it made instead of making a second one."""
    from uuid import uuid4

    from prefect.states import Scheduled

    flow_run = client.create_flow_run_from_deployment(
        deployment_id, state=Scheduled(scheduled_time=utcnow()),
        tags=["trigger-now"], idempotency_key=f"trigger-now-{uuid4()}",
    )
    return flow_run.id


def is_auto_scheduled(client: SyncPrefectClient, flow_run_id: UUID | str) -> bool:
    """Whether the Prefect scheduler (not a person or trigger-now) made this flow run."""
    return bool(client.read_flow_run(flow_run_id).auto_scheduled)


def _scheduled_runs(client: SyncPrefectClient, deployment_id: UUID | str) -> list[Any]:
    """The deployment's flow runs still in a Scheduled state, earliest first."""
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    return client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[UUID(str(deployment_id))])),
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))),
        sort=FlowRunSort.EXPECTED_START_TIME_ASC,
        limit=200,
    )


def upcoming_runs(client: SyncPrefectClient, deployment_id: UUID | str) -> list[dt.datetime]:
    """Expected start times of the deployment's flow runs still in Scheduled, earliest first."""
    found = _scheduled_runs(client, deployment_id)
    return [dt.datetime.fromtimestamp(run.expected_start_time.timestamp(), tz=dt.timezone.utc)
            for run in found if run.expected_start_time is not None]
