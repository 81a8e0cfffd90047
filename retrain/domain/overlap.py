"""What a new run of a model does while another run of the same model is active.

The policy is part of the run config (`PipelineConfig.overlap`), so a schedule's frozen
config carries it and a manual run can override it. The decision is a pure function of the
model's active runs; `retrain.services.overlap` takes it under a lock on the model's row,
so two runs starting at the same moment never both see "nothing active".

A run is *admitted* once its decision said go. Runs are ordered by run number (see
`decide`), so simultaneous starts resolve the same way on every backend.
"""

from __future__ import annotations

import datetime as dt
from enum import Enum

from pydantic import BaseModel, ConfigDict, Field


class OverlapPolicy(str, Enum):
    """What a run does when a run of the same model is active."""

    ALLOW = "allow"    # run side by side
    QUEUE = "queue"    # wait until the earlier runs of the model have ended, then run
    SKIP = "skip"      # end at once, recorded `skipped` with the active run as the reason
    CANCEL = "cancel"  # end at once, recorded `cancelled` with the active run as the reason


class OverlapAction(str, Enum):
    """The decision for one run at one moment."""

    GO = "go"
    WAIT = "wait"
    SKIP = "skip"
    CANCEL = "cancel"


class ActiveRun(BaseModel):
    """Another run of the same model whose process is alive."""

    model_config = ConfigDict(frozen=True)

    run_number: int = Field(description="Its run number.")
    flow_run_id: str | None = Field(default=None, description="Its Prefect flow run.")
    admitted: bool = Field(description="Whether its own overlap decision let it go.")


class OverlapVerdict(BaseModel):
    """What the run does now, and why."""

    model_config = ConfigDict(frozen=True)

    action: OverlapAction = Field(description="go, wait, skip or cancel.")
    reason: str | None = Field(default=None, description="The active run it yields to.")
    blocking: list[int] = Field(default_factory=list,
                                description="Run numbers of the active runs it yields to.")


def decide(policy: OverlapPolicy, model_name: str, run_number: int,
           active: list[ActiveRun]) -> OverlapVerdict:
    """The decision for run `run_number` of `model_name` given the model's other active runs.

    Queue waits behind every admitted run and every lower-numbered one not admitted yet.
    Skip and cancel give way to admitted runs; while only lower-numbered runs are still
    deciding (or queued), they wait for them, so that ten runs started together leave
    exactly one going and nine naming it.
    """
    if policy is OverlapPolicy.ALLOW:
        return OverlapVerdict(action=OverlapAction.GO)
    others = [run for run in active if run.run_number != run_number]
    admitted = sorted(run.run_number for run in others if run.admitted)
    earlier = sorted(run.run_number for run in others
                     if not run.admitted and run.run_number < run_number)
    if policy is OverlapPolicy.QUEUE:
        ahead = sorted(admitted + earlier)
        if not ahead:
            return OverlapVerdict(action=OverlapAction.GO)
        return OverlapVerdict(action=OverlapAction.WAIT, blocking=ahead,
                              reason=_reason("queued", policy, model_name, ahead))
    if admitted:
        action = OverlapAction.SKIP if policy is OverlapPolicy.SKIP else OverlapAction.CANCEL
        verb = "skipped" if action is OverlapAction.SKIP else "cancelled"
        return OverlapVerdict(action=action, blocking=admitted,
                              reason=_reason(verb, policy, model_name, admitted))
    if earlier:
        return OverlapVerdict(action=OverlapAction.WAIT, blocking=earlier,
                              reason=_reason("waiting for earlier runs to start or give way;",
                                             policy, model_name, earlier))
    return OverlapVerdict(action=OverlapAction.GO)


def _reason(verb: str, policy: OverlapPolicy, model_name: str, numbers: list[int]) -> str:
    many = len(numbers) > 1
    runs = ", ".join(f"#{number}" for number in numbers)
    return (f"{verb} by the overlap policy {policy.value!r}: run{'s' if many else ''} {runs} "
            f"of {model_name} {'are' if many else 'is'} active")


def alive(heartbeat_at: dt.datetime | None, started_at: dt.datetime | None,
          now: dt.datetime, timeout_seconds: float) -> bool:
    """Whether a running run's process was heard from within `timeout_seconds` (its last
    heartbeat, else its start)."""
    last = heartbeat_at or started_at
    if last is None:
        return False
    if last.tzinfo is None:
        last = last.replace(tzinfo=dt.timezone.utc)
    return (now - last).total_seconds() <= timeout_seconds
