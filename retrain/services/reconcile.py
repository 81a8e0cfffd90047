"""No run lost: bring the state store in line with Prefect, without the automations.

A training flow run normally writes its own record from its hooks. Some end before they
can: the worker got a 503 submitting it and marked it Crashed, its pod never started, its
worker or node was killed with the process inside. `reconcile()` finds each such flow run
from the Prefect API and records it with Prefect's own message, blaming no stage that did
not run, and recounts its schedule's statistics:

- a record still open whose flow run ended in Prefect: ended as Prefect says;
- a record still running whose process stopped its heartbeat
  (RETRAIN_HEARTBEAT_TIMEOUT_SECONDS): its flow run is set Crashed and so is the record;
- a training flow run that ended Failed, Crashed or Cancelled without any record (within
  the lookback window): a record is made and ended;
- a training flow run Pending for longer than RETRAIN_PENDING_TIMEOUT_SECONDS (submitted,
  its process or pod never started), or Running that long without ever opening its record
  (its process died at start): set Crashed and recorded.

A flow run the server refuses to crash (past the client's retries) is left for the next pass,
the others are still reconciled. It is idempotent: run it from `retrain runs reconcile`, from the `reconcile-runs/every-5-minutes`
deployment (prefect.yaml), or after an outage.
"""

from __future__ import annotations

import datetime as dt
import logging

from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError

from retrain.adapters import prefect_runs
from retrain.adapters.prefect import PrefectUnavailable, prefect_client
from retrain.adapters.prefect_runs import FlowRunState
from retrain.domain.clock import aware, utcnow
from retrain.domain.overlap import alive
from retrain.domain.status import RunStatus
from retrain.services import lifecycle
from retrain.services.views import RunOutcome
from retrain.settings import get_settings
from retrain.store import liveness, runs
from retrain.store.sessions import sessions

logger = logging.getLogger("retrain.reconcile")

_FAILED_STATES = {"FAILED": RunStatus.FAILED, "CRASHED": RunStatus.CRASHED,
                  "CANCELLED": RunStatus.CANCELLED}


class Reconciled(BaseModel):
    """One record reconciliation wrote."""

    run_id: str = Field(description="The run record.")
    run_name: str = Field(description="`name #N`.")
    flow_run_id: str = Field(description="Its Prefect flow run.")
    status: RunStatus = Field(description="The status recorded.")
    message: str | None = Field(default=None, description="Why, in Prefect's words or ours.")
    created: bool = Field(default=False, description="The flow run had no record before.")


def status_of(state: FlowRunState) -> RunStatus:
    """The record status a final Prefect state means."""
    if state.state_type == "COMPLETED":
        return {"Skipped": RunStatus.SKIPPED,
                "NotBlessed": RunStatus.NOT_BLESSED}.get(state.state_name, RunStatus.COMPLETED)
    return _FAILED_STATES[state.state_type]


def _message(state: FlowRunState) -> str:
    text = state.message or state.state_name
    return f"timed out: {text}" if state.state_name == "TimedOut" else text


def _end(flow_run_id: str, status: RunStatus, message: str | None) -> None:
    if status in (RunStatus.COMPLETED, RunStatus.NOT_BLESSED, RunStatus.SKIPPED):
        lifecycle.finish_run(flow_run_id, RunOutcome(status=status, message=message))
    else:
        lifecycle.end_run(flow_run_id, status, message)


def _view(flow_run_id: str, created: bool = False) -> Reconciled:
    with sessions()() as session:
        run = runs.run_for_flow_run(session, flow_run_id)
        return Reconciled(run_id=run.id, run_name=f"{run.name} #{run.run_number}",
                          flow_run_id=flow_run_id, status=run.status,
                          message=run.error_message, created=created)


def _lost(flow_run_id: str, last: dt.datetime | None, now: dt.datetime, timeout: float) -> str:
    seen = f"since {last:%Y-%m-%d %H:%M:%S} UTC ({(now - last).total_seconds():.0f} s ago)" \
        if last else "ever"
    return (f"crashed: no heartbeat from the process running flow run {flow_run_id} {seen}, "
            f"more than {timeout:.0f} s: its worker, pod or node was lost")


def reconcile(now: dt.datetime | None = None, lookback_hours: float = 72.0) -> list[Reconciled]:
    """Record every training flow run that ended (or died) without its record saying so;
    returns what was written."""
    settings = get_settings()
    now = now or utcnow()
    done: list[Reconciled] = []
    with prefect_client(require_server=True) as client:
        with sessions()() as session:
            open_records = [(r.flow_run_id, RunStatus(r.status), aware(r.heartbeat_at),
                             aware(r.started_at)) for r in liveness.open_runs(session)]
        states = prefect_runs.by_id(client, [flow_run_id for flow_run_id, *_ in open_records])
        for flow_run_id, status, heartbeat, started in open_records:
            state = states.get(flow_run_id)
            try:
                if state is not None and state.final:
                    _end(flow_run_id, status_of(state), _message(state))
                elif status is RunStatus.RUNNING and not alive(
                        heartbeat, started, now, settings.heartbeat_timeout_seconds):
                    message = _lost(flow_run_id, heartbeat or started, now,
                                    settings.heartbeat_timeout_seconds)
                    if state is not None:
                        prefect_runs.crash(client, flow_run_id, message)
                    lifecycle.end_run(flow_run_id, RunStatus.CRASHED, message)
                else:
                    continue
            except (ValueError, IntegrityError):  # e.g. a transition the record refuses
                logger.warning("could not reconcile flow run %s", flow_run_id, exc_info=True)
                continue
            except PrefectUnavailable as exc:  # the next pass tries again; the rest go on
                logger.warning("could not crash flow run %s: %s", flow_run_id, exc)
                continue
            done.append(_view(flow_run_id))

        since = now - dt.timedelta(hours=lookback_hours)
        ended = prefect_runs.training_runs(client, _FAILED_STATES, since)
        # Pending (never started) or Running without ever opening a record (its hook writes
        # the record the moment it runs): past the pending timeout, its process is gone.
        stuck = [state for state in prefect_runs.training_runs(client, ["PENDING", "RUNNING"], since)
                 if state.since is not None
                 and (now - state.since).total_seconds() > settings.pending_timeout_seconds]
        with sessions()() as session:
            recorded = liveness.recorded_flow_runs(session, [s.id for s in ended + stuck])
        for state in stuck:
            if state.id in recorded:
                continue
            message = (f"crashed: {state.state_name} since {state.since:%Y-%m-%d %H:%M:%S} UTC "
                       f"without a record, more than {settings.pending_timeout_seconds:.0f} s: "
                       + ("its process or pod never started" if state.state_type == "PENDING"
                          else "its process died before it could record the run"))
            try:
                prefect_runs.crash(client, state.id, message)
            except PrefectUnavailable as exc:  # the next pass tries again; the rest go on
                logger.warning("could not crash flow run %s: %s", state.id, exc)
                continue
            ended.append(state.model_copy(update={"state_type": "CRASHED", "message": message}))
        for state in ended:
            if state.id in recorded:
                continue
            try:
                with sessions().begin() as session:
                    lifecycle.record_unopened(session, state.raw)
            except IntegrityError:  # its hooks or the failure automation recorded it meanwhile
                continue
            _end(state.id, status_of(state), _message(state))
            done.append(_view(state.id, created=True))
    for item in done:
        logger.info("reconciled %s (flow run %s): %s", item.run_name, item.flow_run_id,
                    item.status.value)
    return done
