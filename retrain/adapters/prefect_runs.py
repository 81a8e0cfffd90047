"""Training flow runs as Prefect has them: what reconciliation reads and the one state it
writes (Crashed, for a flow run whose process is gone). Callers pass a synchronous client
(`retrain.adapters.prefect.prefect_client`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from retrain.adapters.prefect import unavailable
from retrain.adapters.prefect_deployments import FLOW_NAME

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

PAGE = 200


class FlowRunState(BaseModel):
    """One flow run and its state, as reconciliation needs it."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="Flow run id.")
    state_type: str = Field(description="Prefect's state type: RUNNING, CRASHED, …")
    state_name: str = Field(description="The state's name: Running, Crashed, NotBlessed, …")
    message: str | None = Field(default=None, description="The state's message.")
    since: dt.datetime | None = Field(default=None, description="When it entered the state.")
    deployment_id: str | None = Field(default=None, description="Its deployment.")
    raw: Any = Field(default=None, exclude=True, description="Prefect's FlowRun object.")

    @property
    def final(self) -> bool:
        """The flow run will not change state again."""
        return self.state_type in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")

    @classmethod
    def of(cls, flow_run: Any) -> FlowRunState:
        state = flow_run.state
        return cls(id=str(flow_run.id), state_type=state.type.value if state else "SCHEDULED",
                   state_name=state.name if state else "Scheduled",
                   message=state.message if state else None,
                   since=state.timestamp if state else None,
                   deployment_id=str(flow_run.deployment_id) if flow_run.deployment_id else None,
                   raw=flow_run)


def _pages(client: SyncPrefectClient, **filters: Any) -> list[Any]:
    found, offset = [], 0
    while True:
        page = client.read_flow_runs(limit=PAGE, offset=offset, **filters)
        found.extend(page)
        if len(page) < PAGE:
            return found
        offset += PAGE


def by_id(client: SyncPrefectClient, flow_run_ids: Iterable[str]) -> dict[str, FlowRunState]:
    """These flow runs by id (the ones Prefect no longer has are missing)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    ids = [UUID(str(i)) for i in flow_run_ids]
    found: dict[str, FlowRunState] = {}
    for start in range(0, len(ids), PAGE):
        chunk = ids[start:start + PAGE]
        for flow_run in _pages(client, flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=chunk))):
            found[str(flow_run.id)] = FlowRunState.of(flow_run)
    return found


def training_runs(client: SyncPrefectClient, state_types: Iterable[str],
                  since: dt.datetime) -> list[FlowRunState]:
    """Training flow runs in these state types expected to start after `since`."""
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterExpectedStartTime,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    return [FlowRunState.of(flow_run) for flow_run in _pages(
        client,
        flow_filter=FlowFilter(name=FlowFilterName(any_=[FLOW_NAME])),
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(
                any_=[StateType(t) for t in state_types])),
            expected_start_time=FlowRunFilterExpectedStartTime(after_=since)),
    )]


def crash(client: SyncPrefectClient, flow_run_id: str, message: str) -> None:
    """End a flow run whose process is gone as Crashed (forced: no process will report).
    PrefectUnavailable if the server kept refusing past the client's retries."""
    from prefect.states import Crashed

    try:
        client.set_flow_run_state(flow_run_id, Crashed(message=message), force=True)
    except Exception as exc:
        error = unavailable(exc)
        if error is None:
            raise
        raise error from exc


def work_pool_type(client: SyncPrefectClient, flow_run_id: Any) -> tuple[str, str] | None:
    """(name, type) of the work pool a worker started the flow run from, e.g. ("retrain-cpu",
    "kubernetes"); None for a flow run no worker started (called in process, served)."""
    flow_run = client.read_flow_run(UUID(str(flow_run_id)))
    if not flow_run.work_pool_name:
        return None
    return flow_run.work_pool_name, client.read_work_pool(flow_run.work_pool_name).type
