"""Schedule operations: the Python API behind `retrain schedules …` and the failure automation.

A registered model has at most one schedule (seed 003). It is created from a run or from the
model (freezing that config), runs as its own Prefect deployment of the training flow
(`retrain/adapters/prefect_deployments.py`) and is recorded in the state store with its
statistics (`retrain/store/schedules.py`); the rules it applies (late slots, statistics,
the circuit breaker) are `retrain/domain/schedule/rules.py`. Like `services/runs.py`, every
operation validates its input and checks the schedule's state before changing anything:

- bad input (a bad schedule, a once time in the past, an unknown model, run or schedule, no
  Prefect server, no base deployment) raises `ValueError` / `pydantic.ValidationError` /
  `LookupError` naming the problem;
- an operation the schedule's state does not allow (a second schedule for a model, pausing a
  paused one) raises `OperationRefused` with the reason.

Nothing is created in Prefect or the store when either is raised.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from retrain.adapters import prefect_deployments as prefect_side
from retrain.adapters.prefect import prefect_client
from retrain.domain.clock import aware, utcnow
from retrain.domain.config import PipelineConfig, with_overrides
from retrain.domain.overlap import OverlapPolicy
from retrain.domain.schedule.preview import PreviewRun, preview
from retrain.domain.schedule.rules import (  # SchedulePolicy, SlotCheck: this API's types
    SchedulePolicy,
    SlotCheck,
    breaker_trips,
    check_slot,
    pause_reason,
)
from retrain.domain.schedule.spec import (
    ScheduleSpec,
    check_once_in_future,
    describe,
    skipped_months,
)
from retrain.domain.status import RunStatus, ScheduleStatus
from retrain.services.lifecycle import record_unopened
from retrain.services.errors import OperationRefused
from retrain.services.runs import effective_config, live_run
from retrain.services.views import ScheduledRun
from retrain.settings import get_settings
from retrain.store import runs
from retrain.store import schedules as store
from retrain.store.orm import TrainingSchedule
from retrain.store.schedules import ScheduleExists
from retrain.store.sessions import sessions



class ScheduleView(BaseModel):
    """A schedule as operations and the CLI show it."""

    id: str = Field(description="Schedule id.")
    name: str = Field(description="Schedule name.")
    model_name: str = Field(description="The registered model it retrains.")
    spec: ScheduleSpec = Field(description="When it runs.")
    summary: str = Field(description="When it runs, in words.")
    skipped_months: list[str] = Field(description="Months a monthly day 29-31 never occurs.")
    status: ScheduleStatus = Field(description="active, paused, completed or cancelled.")
    status_reason: str | None = Field(default=None, description="Why it last changed.")
    deployment: str | None = Field(default=None, description="Its Prefect deployment.")
    max_lateness_minutes: int = Field(description="Late-run policy.")
    overlap: OverlapPolicy = Field(default=OverlapPolicy.ALLOW,
                                   description="The frozen config's overlap policy.")
    pause_after_failures: int = Field(description="Circuit breaker threshold.")
    total_runs: int = Field(description="Finished runs (successful, failed, cancelled).")
    successful_runs: int = Field(description="Completed or not blessed.")
    failed_runs: int = Field(description="Failed or crashed.")
    skipped_runs: int = Field(description="Slots skipped as too late.")
    consecutive_failures: int = Field(description="Failed runs in a row, newest first.")
    success_rate: float | None = Field(default=None, description="Percent; None before a run.")
    last_run_at: dt.datetime | None = Field(default=None, description="Last run's start.")
    next_run_at: dt.datetime | None = Field(default=None, description="Next slot, if active.")

    @classmethod
    def of(cls, row: TrainingSchedule) -> ScheduleView:
        """From a store row."""
        spec = store.spec_of(row)
        return cls(
            id=row.id, name=row.name, model_name=row.registered_model.name, spec=spec,
            summary=describe(spec), skipped_months=skipped_months(spec),
            status=ScheduleStatus(row.status), status_reason=row.status_reason,
            deployment=row.prefect_deployment_name,
            max_lateness_minutes=row.max_lateness_seconds // 60,
            overlap=OverlapPolicy((row.config or {}).get("overlap") or OverlapPolicy.ALLOW.value),
            pause_after_failures=row.pause_after_failures, total_runs=row.total_runs,
            successful_runs=row.successful_runs, failed_runs=row.failed_runs,
            skipped_runs=row.skipped_runs, consecutive_failures=row.consecutive_failures,
            success_rate=row.success_rate, last_run_at=aware(row.last_run_at),
            next_run_at=aware(row.next_run_at),
        )


class FailureReport(BaseModel):
    """What the failure automation recorded about one failed flow run."""

    run_id: str | None = Field(default=None, description="The run record, if there is one.")
    run_name: str | None = Field(default=None, description="`name #N` of the run.")
    model_name: str | None = Field(default=None, description="Its registered model.")
    status: str | None = Field(default=None, description="The run's status now.")
    error_stage: str | None = Field(default=None, description="Stage that failed.")
    error_message: str | None = Field(default=None, description="Why.")
    schedule_id: str | None = Field(default=None, description="Its schedule, if scheduled.")
    consecutive_failures: int = Field(default=0, description="Of its schedule, now.")
    schedule_paused: bool = Field(default=False, description="The circuit breaker tripped.")
    pause_reason: str | None = Field(default=None, description="Recorded on the schedule.")


# --- create and preview -------------------------------------------------------------------------

def preview_schedule(spec: ScheduleSpec, count: int = 5,
                     now: dt.datetime | None = None) -> list[PreviewRun]:
    """The next `count` runs in the schedule's zone and UTC, with DST notes; a once
    schedule in the past is refused (ValueError)."""
    now = now or utcnow()
    check_once_in_future(spec, now)
    return preview(spec, now, count)


def _source(session, *, run_ref: str | None, model_name: str | None):
    if (run_ref is None) == (model_name is None):
        raise ValueError("create a schedule from a run or from a registered model (one of them)")
    if run_ref is not None:
        run = live_run(session, run_ref)
        return run.registered_model, effective_config(run), run.id
    model = runs.model_by_name(session, model_name)
    if model is None:
        raise LookupError(f"no registered model named {model_name!r}")
    template = runs.template_run(session, model)
    if template is None:
        raise LookupError(f"model {model_name!r} has no runs whose config could be frozen")
    return model, effective_config(template), template.id


def create_schedule(
    spec: ScheduleSpec, *, run_ref: str | None = None, model_name: str | None = None,
    name: str | None = None, description: str | None = None,
    policy: SchedulePolicy | None = None, base_deployment: str | None = None,
    now: dt.datetime | None = None, overlap: OverlapPolicy | None = None,
) -> ScheduleView:
    """Schedule retraining of a model, freezing the config of `run_ref` or of the model's
    template run (with `overlap`, if given, as its overlap policy), as a Prefect deployment
    with one schedule; refused if the model has one."""
    policy = policy or SchedulePolicy()
    now = now or utcnow()
    check_once_in_future(spec, now)
    base_name = base_deployment or get_settings().schedule_base_deployment
    with sessions().begin() as session, prefect_client(require_server=True) as client:
        model, config, source_id = _source(session, run_ref=run_ref, model_name=model_name)
        frozen = PipelineConfig.model_validate(config)
        if overlap is not None:
            frozen = with_overrides(frozen, {"overlap": overlap.value})
        config = frozen.snapshot()
        existing = store.schedule_of_model(session, model)
        if existing is not None:
            raise OperationRefused(str(ScheduleExists(existing)))
        base = prefect_side.read_base(client, base_name)
        slug = store.slug_for(model.name)
        try:
            row = store.create_schedule(
                session, model, name=name or f"{model.name} retraining",
                description=description, fields=store.row_fields(spec), config=config, slug=slug,
                source_run_id=source_id, max_lateness_seconds=policy.max_lateness_minutes * 60,
                pause_after_failures=policy.pause_after_failures,
            )
        except ScheduleExists as exc:
            raise OperationRefused(str(exc)) from None
        deployment_id = prefect_side.apply(client, base, slug=slug, spec=spec, config=config,
                                           paused=False, description=description,
                                           tags=(model.name,))
        try:
            row.prefect_deployment_id = str(deployment_id)
            row.prefect_deployment_name = prefect_side.deployment_name(slug)
            store.refresh(session, row, now)
            session.flush()
            view = ScheduleView.of(row)
        except BaseException:  # the store row is rolled back: take Prefect's back too
            prefect_side.delete(client, deployment_id)
            raise
    return view


# --- lifecycle ----------------------------------------------------------------------------------

def _require(row: TrainingSchedule, allowed: set[ScheduleStatus], action: str) -> None:
    if ScheduleStatus(row.status) not in allowed:
        states = " or ".join(sorted(s.value for s in allowed))
        raise OperationRefused(
            f"schedule {row.id} of {row.registered_model.name!r} is "
            f"{ScheduleStatus(row.status).value}; only a "
            f"schedule that is {states} can be {action}")


def pause_schedule(ref: str, reason: str = "paused by user") -> ScheduleView:
    """Pause: Prefect deletes its scheduled runs and makes no more until resumed."""
    with sessions().begin() as session, prefect_client(require_server=True) as client:
        row = store.get_schedule(session, ref)
        _require(row, {ScheduleStatus.ACTIVE}, "paused")
        prefect_side.pause(client, row.prefect_deployment_id)
        store.set_status(session, row, ScheduleStatus.PAUSED, reason)
        return ScheduleView.of(row)


def resume_schedule(ref: str) -> ScheduleView:
    """Resume a paused schedule; its consecutive-failure count starts afresh."""
    with sessions().begin() as session, prefect_client(require_server=True) as client:
        row = store.get_schedule(session, ref)
        _require(row, {ScheduleStatus.PAUSED}, "resumed")
        prefect_side.resume(client, row.prefect_deployment_id)
        store.set_status(session, row, ScheduleStatus.ACTIVE, "resumed by user")
        store.refresh(session, row)
        return ScheduleView.of(row)


def cancel_schedule(ref: str) -> ScheduleView:
    """Stop the schedule for good: its deployment is deleted, its record and runs are kept."""
    with sessions().begin() as session, prefect_client(require_server=True) as client:
        row = store.get_schedule(session, ref)
        _require(row, {ScheduleStatus.ACTIVE, ScheduleStatus.PAUSED}, "cancelled")
        prefect_side.delete(client, row.prefect_deployment_id)
        store.set_status(session, row, ScheduleStatus.CANCELLED, "cancelled by user")
        return ScheduleView.of(row)


def delete_schedule(ref: str) -> ScheduleView:
    """Delete the schedule and its deployment; its runs stay (no longer linked)."""
    with sessions().begin() as session, prefect_client(require_server=True) as client:
        row = store.get_schedule(session, ref)
        view = ScheduleView.of(row)
        if row.prefect_deployment_id:
            prefect_side.delete(client, row.prefect_deployment_id)
        session.delete(row)
    return view


def trigger_schedule(ref: str, force: bool = False) -> str:
    """Start a run of the schedule's frozen config now; returns the Prefect flow run id.

    Allowed while active; a paused schedule only with `force` (it stays paused), since it
    was paused for a reason (by a person, or by the circuit breaker after failures)."""
    with sessions()() as session:
        row = store.get_schedule(session, ref)
        _require(row, {ScheduleStatus.ACTIVE, ScheduleStatus.PAUSED}, "triggered")
        if ScheduleStatus(row.status) is ScheduleStatus.PAUSED and not force:
            raise OperationRefused(
                f"schedule {row.id} of {row.registered_model.name!r} is paused "
                f"({row.status_reason or 'no reason recorded'}); pass --force to start a run "
                f"anyway (the schedule stays paused), or resume it")
        deployment_id = row.prefect_deployment_id
    with prefect_client(require_server=True) as client:
        return str(prefect_side.run_now(client, deployment_id))


def sync_schedules(base_deployment: str | None = None) -> list[ScheduleView]:
    """Apply every active or paused schedule to Prefect again (idempotent: one deployment and
    one schedule each, by slug); repairs deleted or edited deployments."""
    base_name = base_deployment or get_settings().schedule_base_deployment
    synced = []
    with sessions().begin() as session, prefect_client(require_server=True) as client:
        base = prefect_side.read_base(client, base_name)
        for row in store.list_schedules(session):
            status = ScheduleStatus(row.status)
            if status not in (ScheduleStatus.ACTIVE, ScheduleStatus.PAUSED):
                continue
            paused = status is ScheduleStatus.PAUSED
            deployment_id = prefect_side.apply(
                client, base, slug=row.slug, spec=store.spec_of(row), config=row.config,
                paused=paused, description=row.description, tags=(row.registered_model.name,))
            if paused:  # pausing deletes runs a re-apply may have let the scheduler make
                prefect_side.pause(client, deployment_id)
            row.prefect_deployment_id = str(deployment_id)
            store.refresh(session, row)
            synced.append(ScheduleView.of(row))
    return synced


def get_schedule(ref: str) -> ScheduleView:
    """One schedule, statistics recounted."""
    with sessions().begin() as session:
        row = store.get_schedule(session, ref)
        store.refresh(session, row)
        return ScheduleView.of(row)


def list_schedules() -> list[ScheduleView]:
    """Every schedule, statistics recounted."""
    with sessions().begin() as session:
        return [ScheduleView.of(store.refresh(session, row)) for row in store.list_schedules(session)]


def schedule_runs(ref: str) -> list[ScheduledRun]:
    """The schedule's runs, newest first."""
    with sessions()() as session:
        return [ScheduledRun.of_run(run)
                for run in store.schedule_runs(session, store.get_schedule(session, ref))]


# --- run outcomes (flow hooks and the failure automation) ---------------------------------------

_STATUS_OF_STATE = {"Crashed": RunStatus.CRASHED, "Cancelled": RunStatus.CANCELLED}


def record_failed_run(flow_run_id: str, state_name: str, message: str | None) -> FailureReport:
    """The failure automation's work: make sure the run is recorded as failed (or crashed),
    recount its schedule's statistics and, after too many failures in a row, pause the
    schedule and record why."""
    status = _STATUS_OF_STATE.get(state_name, RunStatus.FAILED)
    text = message or state_name
    if state_name == "TimedOut":
        text = f"timed out: {text}"
    with sessions().begin() as session:
        run = runs.run_for_flow_run(session, flow_run_id)
        if run is None:
            with prefect_client(require_server=True) as client:
                run = record_unopened(session, client.read_flow_run(flow_run_id))
        if not RunStatus(run.status).terminal:
            runs.end_run(session, run.id, status, text)
        report = FailureReport(
            run_id=run.id, run_name=f"{run.name} #{run.run_number}",
            model_name=run.registered_model.name, status=run.status,
            error_stage=run.error_stage, error_message=run.error_message,
            schedule_id=run.schedule_id,
        )
        row = store.refresh_for_run(session, run)
        if row is None:
            return report
        report.consecutive_failures = row.consecutive_failures
        if breaker_trips(ScheduleStatus(row.status), row.consecutive_failures,
                         row.pause_after_failures):
            reason = pause_reason(
                [(r.run_number, RunStatus(r.status)) for r in store.schedule_runs(session, row)],
                row.consecutive_failures, run.error_stage, run.error_message)
            with prefect_client(require_server=True) as client:
                prefect_side.pause(client, row.prefect_deployment_id)
            store.set_status(session, row, ScheduleStatus.PAUSED, reason)
            report.schedule_paused, report.pause_reason = True, reason
        return report


# --- the late-slot check (first step of a scheduled training run) -------------------------------

def check_slot_of_flow_run(
    flow_run_id: str, deployment_id: str | None, scheduled_start: dt.datetime | None,
    now: dt.datetime | None = None,
) -> SlotCheck:
    """Run or skip a flow run by its schedule's late-run policy, and record its lateness.

    Runs not started by a schedule's deployment always go ahead. Whether the Prefect
    scheduler made the run (`auto_scheduled`) is read from Prefect only for a schedule's
    deployment: such runs of a schedule that is no longer active are skipped.
    """
    if not deployment_id:
        return SlotCheck(skip=False)
    slot = (dt.datetime.fromtimestamp(scheduled_start.timestamp(), tz=dt.timezone.utc)
            if scheduled_start else None)
    with sessions().begin() as session:
        schedule = store.schedule_for_deployment(session, str(deployment_id))
        if schedule is None:
            return SlotCheck(skip=False)
        now = now or utcnow()
        with prefect_client() as client:
            auto_scheduled = prefect_side.is_auto_scheduled(client, flow_run_id)
        verdict = check_slot(slot, now, schedule.max_lateness_seconds,
                             schedule_status=ScheduleStatus(schedule.status),
                             auto_scheduled=auto_scheduled)
        run = runs.run_for_flow_run(session, str(flow_run_id))
        if run is not None:
            run.lateness_seconds = verdict.lateness_seconds
    return verdict
