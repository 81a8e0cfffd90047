"""Run operations: start a run from a config, rerun a finished one, edit its config, cancel
it, delete it with its artifacts: the API that `retrain runs …` and the schedules call.

Each operation validates its input first and checks the run's state before changing
anything (`retrain/services/errors.py`): bad input (an invalid config, an unknown run id or
model) raises `ValueError`, `pydantic.ValidationError` or `LookupError` naming the problem;
an operation the run's state does not allow raises `OperationRefused` with the reason.
Nothing is written when either is raised. Reads (show, list, best runs, models) live in
`catalog.py`, estimates in `estimates.py`.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable
from uuid import uuid4

from retrain.domain.clock import utcnow
from retrain.domain.config import PipelineConfig
from retrain.domain.status import TERMINAL, RunStatus
from retrain.services.configs import run_dir
from retrain.services.errors import NotFound, OperationRefused
from retrain.services.estimates import estimate_run
from retrain.services.lifecycle import new_run
from retrain.services.views import DeleteReport, RunRef
from retrain.store import runs
from retrain.store.orm import TrainingRun
from retrain.store.sessions import sessions

__all__ = [
    "EDITABLE", "FlowRunner", "cancel_run", "create_run", "delete_run",
    "edit_config", "effective_config", "live_run", "prepare_rerun", "rerun", "start_run",
    "submit", "template_config",
]

logger = logging.getLogger("retrain.operations")

# Config sections a user may edit on a finished run (seed 003's Edit feature): training
# parameters, GPUs and the evaluator; for user modules the step counts stand in for epochs.
EDITABLE = ("training", "gpu", "evaluator", "trainer.train_steps", "trainer.eval_steps")


# --- start and rerun -------------------------------------------------------------------------

def create_run(
    config: PipelineConfig, *, name: str | None = None, description: str | None = None,
    source_run_id: str | None = None,
) -> RunRef:
    """A pending run record of `config`, with its cost estimate; nothing runs yet."""
    estimate, note = estimate_run(config)
    with sessions().begin() as session:
        run = new_run(
            session, config, name=name, description=description, source_run_id=source_run_id,
            estimated_cost=estimate.high_usd if estimate else None,
            estimated_seconds=estimate.high_hours * 3600 if estimate else None,
        )
        return RunRef.of(run, estimate=estimate, estimate_note=note)


# Runs a training flow in this process with the flow's parameters (`config`, `run_id`) and
# `return_state=True`: the caller (the CLI) hands in `flows.training_pipeline`, which this
# library does not import.
FlowRunner = Callable[..., Any]


def submit(ref: RunRef, config: PipelineConfig, deployment: str | None,
           run_here: FlowRunner | None = None) -> RunRef:
    """Start the run: on a Prefect deployment (returns at once), or without one in this
    process through `run_here` (waits).

    A submission that fails marks the run failed with the reason, then raises.
    """
    parameters = {"config": config.snapshot(), "run_id": ref.id}
    if deployment is None:
        if run_here is None:
            _fail_if_unstarted(ref.id, "no deployment given and no flow to run here")
            raise ValueError("give a deployment to submit to, or a flow to run here")
        try:
            run_here(**parameters, return_state=True)  # the flow's hooks record the outcome
        except BaseException as exc:  # the flow never started (no API) or was interrupted
            _fail_if_unstarted(ref.id, f"could not run the flow here: {exc!r}")
            raise
    else:
        from prefect.deployments import run_deployment
        from prefect.exceptions import ObjectNotFound

        from retrain.adapters.prefect import api_retries

        try:
            with api_retries():
                # A key of its own: a retried request never makes a second flow run.
                flow_run = run_deployment(deployment, parameters=parameters, timeout=0,
                                          idempotency_key=f"retrain-run-{uuid4()}")
        except ObjectNotFound as exc:
            _fail_if_unstarted(ref.id, f"no Prefect deployment named {deployment!r}")
            raise NotFound(f"no Prefect deployment named {deployment!r} (see `prefect "
                           f"deployment ls`)") from exc
        except Exception as exc:
            _fail_if_unstarted(ref.id, f"could not submit to {deployment}: {exc}")
            raise
        with sessions().begin() as session:
            run = runs.get_run(session, ref.id)
            if run.flow_run_id is None:
                run.flow_run_id = str(flow_run.id)
            if run.status == RunStatus.PENDING:
                runs.set_status(session, ref.id, RunStatus.SUBMITTING)
    with sessions()() as session:
        return RunRef.of(runs.get_run(session, ref.id), estimate=ref.estimate,
                         estimate_note=ref.estimate_note)


def _fail_if_unstarted(run_id: str, message: str) -> None:
    """A run whose flow never started must not stay pending forever: mark it failed."""
    with sessions().begin() as session:
        if runs.get_run(session, run_id).status == RunStatus.PENDING:
            runs.end_run(session, run_id, RunStatus.FAILED, message)


def start_run(config: PipelineConfig, *, deployment: str | None = None,
              run_here: FlowRunner | None = None, name: str | None = None,
              description: str | None = None) -> RunRef:
    """Record a new run of `config` and start it (see `submit`)."""
    return submit(create_run(config, name=name, description=description), config, deployment,
                  run_here)


def live_run(session, run_ref: str) -> TrainingRun:
    """The run (id or unique prefix), refused if it was deleted."""
    run = runs.get_run(session, run_ref)
    if run.deleted_at is not None:
        raise OperationRefused(
            f"run {run.name} #{run.run_number} was deleted on {run.deleted_at:%Y-%m-%d %H:%M}")
    return run


def effective_config(run: TrainingRun) -> dict[str, Any]:
    """The config snapshot later runs start from: the edited one if the run was edited."""
    return run.edited_config or run.config


def prepare_rerun(run_ref: str) -> tuple[RunRef, PipelineConfig]:
    """A pending rerun of a finished run: same name and config (as edited), next number."""
    with sessions()() as session:
        source = live_run(session, run_ref)
        if RunStatus(source.status) not in TERMINAL:
            raise OperationRefused(
                f"run {source.name} #{source.run_number} is {source.status}; only a finished "
                f"run ({', '.join(sorted(s.value for s in TERMINAL))}) can be rerun")
        # Validated as a new config: a rerun needs the files it names to exist.
        config = PipelineConfig.model_validate(effective_config(source))
        name, number, source_id = source.name, source.run_number, source.id
    ref = create_run(config, name=name, source_run_id=source_id,
                     description=f"Re-run of {name} #{number}")
    return ref, config


def rerun(run_ref: str, *, deployment: str | None = None,
          run_here: FlowRunner | None = None) -> RunRef:
    """Rerun a finished run (stages whose inputs did not change come from the cache)."""
    ref, config = prepare_rerun(run_ref)
    return submit(ref, config, deployment, run_here)


# --- config: edit ----------------------------------------------------------------------------

def _set_path(data: dict[str, Any], path: str, value: Any) -> None:
    keys = path.split(".")
    for key in keys[:-1]:
        child = data.get(key)
        if child is None:
            child = data[key] = {}
        if not isinstance(child, dict):
            raise ValueError(f"{path}: {key} is not a section")
        data = child
    data[keys[-1]] = value


def _editable(path: str) -> bool:
    return any(path == allowed or path.startswith(allowed + ".") for allowed in EDITABLE)


def _flatten(prefix: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, child in value.items():
            out.update(_flatten(f"{prefix}.{key}" if prefix else key, child))
        return out
    return {prefix: value}


def edit_config(run_ref: str, changes: dict[str, Any]) -> tuple[RunRef, dict[str, tuple[Any, Any]]]:
    """Change a finished run's config; it becomes the template of its model's later runs.

    `changes` maps dotted paths (`training.epochs`) to values, or holds nested sections. Only
    the EDITABLE sections may change; the whole edited config is validated before saving.
    Returns the run and each changed path's (old, new) value.
    """
    flat = _flatten("", changes)
    if not flat or flat == {"": changes}:
        raise ValueError("no changes given")
    refused = sorted(path for path in flat if not _editable(path))
    if refused:
        raise ValueError(f"not editable: {', '.join(refused)}; editable sections are "
                         f"{', '.join(EDITABLE)}")
    with sessions().begin() as session:
        run = live_run(session, run_ref)
        if RunStatus(run.status) not in TERMINAL:
            raise OperationRefused(
                f"run {run.name} #{run.run_number} is {run.status}; edit its config once it "
                f"has finished (or cancel it)")
        before = json.loads(json.dumps(effective_config(run)))
        edited = json.loads(json.dumps(before))
        for path, value in flat.items():
            _set_path(edited, path, value)
        validated = PipelineConfig.model_validate(edited).snapshot()
        old, new = _flatten("", before), _flatten("", validated)
        diff = {path: (old.get(path), new.get(path)) for path in sorted(set(old) | set(new))
                if old.get(path) != new.get(path)}
        if diff:
            run.edited_config = validated
            run.config_edited_at = utcnow()
            run.registered_model.template_run_id = run.id
        return RunRef.of(run), diff


def template_config(model_name: str) -> PipelineConfig:
    """The config a new run of `model_name` starts from (its template run's, as edited)."""
    with sessions()() as session:
        model = runs.model_by_name(session, model_name)
        if model is None:
            raise NotFound(f"no registered model named {model_name!r}")
        run = runs.template_run(session, model)
        if run is None:
            raise NotFound(f"model {model_name!r} has no runs to start from")
        return PipelineConfig.model_validate(effective_config(run))


# --- cancel and delete -----------------------------------------------------------------------

def _cancel_flow_runs(flow_run_id: str) -> list[str]:
    """Cancel a flow run and every unfinished flow run under it; returns the ids cancelled.

    A run not yet started is set Cancelled at once; a running one is set Cancelling, and
    the worker that runs it stops its process (Prefect's cancellation).
    """
    import uuid

    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId
    from prefect.states import Cancelled, Cancelling

    from retrain.adapters.prefect import prefect_client

    cancelled: list[str] = []
    with prefect_client() as client:
        pending = [uuid.UUID(flow_run_id)]
        while pending:
            current = pending.pop()
            flow_run = client.read_flow_run(current)
            children = client.read_flow_runs(flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[current])))
            pending.extend(child.id for child in children)
            state = flow_run.state
            if state is None or state.is_final():
                continue
            new_state = Cancelling(message="cancelled with retrain runs cancel") if (
                state.is_running() or state.is_pending()) else Cancelled(
                message="cancelled with retrain runs cancel before it started")
            client.set_flow_run_state(current, new_state, force=True)
            cancelled.append(str(current))
    return cancelled


def cancel_run(run_ref: str) -> tuple[RunRef, list[str]]:
    """Cancel an unfinished run, its Prefect flow run and anything that flow run started."""
    with sessions()() as session:
        run = live_run(session, run_ref)
        if RunStatus(run.status) in TERMINAL:
            raise OperationRefused(
                f"run {run.name} #{run.run_number} has already ended ({run.status}); "
                f"nothing to cancel")
        flow_run_id = run.flow_run_id
    flow_runs = _cancel_flow_runs(flow_run_id) if flow_run_id else []
    with sessions().begin() as session:
        run = runs.end_run(session, runs.get_run(session, run_ref).id, RunStatus.CANCELLED,
                           "cancelled by user")
        return RunRef.of(run), flow_runs


def _remove(uri: str) -> bool:
    import fsspec

    fs, path = fsspec.core.url_to_fs(uri)
    if not fs.exists(path):
        return False
    fs.rm(path, recursive=True)
    return True


def delete_run(run_ref: str) -> DeleteReport:
    """Delete a finished run and its artifacts (stage outputs no other run uses).

    The run's row stays, marked deleted, so later operations on it say so; it leaves
    every listing. The champion's run is refused: it is serving.
    """
    from retrain.adapters import mlflow_registry as registry

    with sessions().begin() as session:
        run = live_run(session, run_ref)
        label = f"{run.name} #{run.run_number}"
        if RunStatus(run.status) not in TERMINAL:
            raise OperationRefused(f"run {label} is {run.status}; cancel it before deleting it")
        model = run.registered_model
        champion = (registry.registry_state(model.name).champion
                    if run.registered_version else None)
        if run.registered_version and run.registered_version == champion:
            raise OperationRefused(
                f"run {label} registered version {run.registered_version}, the champion of "
                f"{model.name} (serving); push another version before deleting it")
        removed, kept = [], []
        for stage in run.stages:
            if not stage.output_uri:
                continue
            if runs.runs_sharing_output(session, stage.output_uri, except_run=run.id):
                kept.append(stage.output_uri)
            elif _remove(stage.output_uri):
                removed.append(stage.output_uri)
        serving = (run.artifacts or {}).get("serving_uri")
        if serving and not any(
            (other.artifacts or {}).get("serving_uri") == serving
            for other in model.runs if other.id != run.id and other.deleted_at is None
        ) and _remove(serving):
            removed.append(serving)
        own = run_dir(run)
        if _remove(own):
            removed.append(own)
        if run.registered_version and not any(
            other.registered_version == run.registered_version
            for other in model.runs if other.id != run.id and other.deleted_at is None
        ):
            registry.delete_version(model.name, run.registered_version)
            removed.append(f"MLflow {model.name} version {run.registered_version}")
        run.deleted_at = utcnow()
        if model.template_run_id == run.id:
            model.template_run_id = None
        return DeleteReport(run=RunRef.of(run), removed=removed, kept_shared=kept)
