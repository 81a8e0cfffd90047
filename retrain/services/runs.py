"""Run operations: the one Python API that `retrain …` and the schedules call.

Start a run from a config file, rerun a finished one, show and edit its config, cancel it,
delete it with its artifacts, list the best runs, sync and list registered models. Each
operation validates its input first and checks the run's state before changing anything:

- bad input (an invalid config, an unknown run id or model) raises `ValueError`,
  `pydantic.ValidationError` or `LookupError` naming the problem;
- an operation the run's state does not allow raises `OperationRefused` with the reason.

Nothing is written when either is raised.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, Field

from retrain.domain.config import PipelineConfig
from retrain.domain.costs import CostEstimate, estimate_cost, estimate_hours
from retrain.store import runs
from retrain.store.orm import RegisteredModel, TrainingRun
from retrain.domain.status import TERMINAL, RunStatus
from retrain.services.lifecycle import new_run
from retrain.store.sessions import sessions
from retrain.domain.clock import utcnow

logger = logging.getLogger("retrain.operations")

# Config sections a user may edit on a finished run (seed 003's Edit feature): training
# parameters, GPUs and the evaluator; for user modules the step counts stand in for epochs.
EDITABLE = ("training", "gpu", "evaluator", "trainer.train_steps", "trainer.eval_steps")
# Training throughput measured by benchmarks/recommender_recall.py on 2 CPU cores; used for
# a first run's estimate when no earlier run of the model says how long it took.
DEFAULT_EXAMPLES_PER_SECOND = 30_000.0


class OperationRefused(RuntimeError):
    """The run's state does not allow the operation; the message says why."""


class RunRef(BaseModel):
    """A run as operations report it."""

    id: str = Field(description="Run id.")
    name: str = Field(description="Run name.")
    run_number: int = Field(description="Per registered model.")
    model_name: str = Field(description="Registered model.")
    status: RunStatus = Field(description="Status after the operation.")
    flow_run_id: str | None = Field(default=None, description="Prefect flow run, once started.")
    estimate: CostEstimate | None = Field(default=None, description="Cost estimate, if any.")
    estimate_note: str | None = Field(
        default=None, description="What the estimate is based on, or why there is none.")

    @classmethod
    def of(cls, run: TrainingRun, **extra: Any) -> RunRef:
        """From a run row."""
        return cls(id=run.id, name=run.name, run_number=run.run_number,
                   model_name=run.registered_model.name, status=RunStatus(run.status),
                   flow_run_id=run.flow_run_id, **extra)

    @property
    def label(self) -> str:
        """`name #N`, how runs are told apart (a rerun keeps its name)."""
        return f"{self.name} #{self.run_number}"


# --- config files ----------------------------------------------------------------------------

def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML (.yaml/.yml) or JSON (.json) file; ValueError names the problem."""
    import yaml

    path = Path(path)
    if path.suffix.lower() not in (".yaml", ".yml", ".json"):
        raise ValueError(f"{path}: config files are .yaml, .yml or .json")
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"{path} is not valid {path.suffix[1:].upper()}: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a mapping of config fields, got {type(data).__name__}")
    return data


def load_config(path: str | Path) -> PipelineConfig:
    """A validated pipeline config from a file (pydantic's error lists every bad field)."""
    return PipelineConfig.model_validate(read_config_file(path))


# --- cost estimate ---------------------------------------------------------------------------

# Larger CSV files are not read whole for an estimate: rows are extrapolated from the size.
_CSV_FULL_COUNT_BYTES = 64 << 20


def _csv_rows(name: str) -> int:
    """Data rows of one CSV file (header excluded); extrapolated past 64 MiB."""
    size = Path(name).stat().st_size
    with open(name, "rb") as handle:
        if size <= _CSV_FULL_COUNT_BYTES:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
        else:
            head = handle.read(1 << 20)
            lines = round(size * head.count(b"\n") / max(len(head), 1))
    return max(lines - 1, 0)


def _input_rows(config: PipelineConfig) -> int | None:
    """Rows in a local CSV/Parquet input (cheap: newlines or Parquet metadata), else None."""
    from glob import glob

    if "://" in config.input.uri or config.input.format not in ("csv", "parquet"):
        return None
    files = [f for f in glob(str(Path(config.input.uri) / config.input.pattern)) if Path(f).is_file()]
    if not files:
        return None
    if config.input.format == "parquet":
        import pyarrow.parquet as pq

        return sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    return sum(_csv_rows(f) for f in files)


def _epochs(config: dict[str, Any]) -> int:
    """Epochs of a config snapshot: a user module's run_fn counts as one pass."""
    return ((config.get("training") or {}).get("epochs") or 1) if config.get("model") else 1


def estimate_run(config: PipelineConfig) -> tuple[CostEstimate | None, str]:
    """Cost and duration before start, and the basis it was made on (or why there is none).

    The duration comes from the model's last finished run, scaled by epochs; a first run
    uses the input's row count at the measured CPU throughput.
    """
    with sessions()() as session:
        model = runs.model_by_name(session, config.model_name)
        previous = next(
            (r for r in sorted(model.runs, key=lambda r: -r.run_number)
             if r.duration_seconds and r.status == RunStatus.COMPLETED.value
             and r.deleted_at is None),
            None,
        ) if model else None
        if previous is not None:
            hours = (previous.duration_seconds / 3600 * _epochs(config.snapshot())
                     / _epochs(previous.config))
            low_high, basis = (hours * 0.8, hours * 1.2), (
                f"from {previous.name} #{previous.run_number} "
                f"({previous.duration_seconds:.0f} s, scaled by epochs)")
        else:
            rows = _input_rows(config)
            if rows is None:
                return None, ("no estimate: no finished run of this model yet and the input's "
                              "size cannot be read cheaply")
            low_high = estimate_hours(rows, _epochs(config.snapshot()),
                                      DEFAULT_EXAMPLES_PER_SECOND)
            basis = f"from {rows:,} input rows at {DEFAULT_EXAMPLES_PER_SECOND:,.0f} examples/s"
    gpu = config.gpu
    try:
        estimate = estimate_cost(enabled=gpu.enabled, count=gpu.count, type=gpu.type,
                                 preemptible=gpu.preemptible, machine_type=gpu.machine_type,
                                 hours=low_high)
    except ValueError as exc:
        return None, f"no estimate: {exc}"
    return estimate, basis


# --- start and rerun -------------------------------------------------------------------------

def create_run(
    config: PipelineConfig, *, name: str | None = None, description: str | None = None,
    source: TrainingRun | None = None,
) -> RunRef:
    """A pending run record of `config`, with its cost estimate; nothing runs yet."""
    estimate, note = estimate_run(config)
    with sessions().begin() as session:
        run = new_run(
            session, config, name=name, description=description,
            source_run_id=source.id if source else None,
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

        try:
            flow_run = run_deployment(deployment, parameters=parameters, timeout=0)
        except ObjectNotFound as exc:
            _fail_if_unstarted(ref.id, f"no Prefect deployment named {deployment!r}")
            raise LookupError(f"no Prefect deployment named {deployment!r} (see `prefect "
                              f"deployment ls`)") from exc
        except Exception as exc:
            _fail_if_unstarted(ref.id, f"could not submit to {deployment}: {exc}")
            raise
        with sessions().begin() as session:
            run = runs.get_run(session, ref.id)
            if run.flow_run_id is None:
                run.flow_run_id = str(flow_run.id)
            if run.status == RunStatus.PENDING.value:
                runs.set_status(session, ref.id, RunStatus.SUBMITTING)
    with sessions()() as session:
        return RunRef.of(runs.get_run(session, ref.id), estimate=ref.estimate,
                         estimate_note=ref.estimate_note)


def _fail_if_unstarted(run_id: str, message: str) -> None:
    """A run whose flow never started must not stay pending forever: mark it failed."""
    with sessions().begin() as session:
        if runs.get_run(session, run_id).status == RunStatus.PENDING.value:
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
    """The config later runs start from: the edited one if the run was edited."""
    return run.edited_config or run.config


def prepare_rerun(run_ref: str) -> tuple[RunRef, PipelineConfig]:
    """A pending rerun of a finished run: same name and config (as edited), next number."""
    with sessions()() as session:
        source = live_run(session, run_ref)
        if RunStatus(source.status) not in TERMINAL:
            raise OperationRefused(
                f"run {source.name} #{source.run_number} is {source.status}; only a finished "
                f"run ({', '.join(sorted(s.value for s in TERMINAL))}) can be rerun")
        config = PipelineConfig.model_validate(effective_config(source))
    ref = create_run(config, name=source.name, source=source,
                     description=f"Re-run of {source.name} #{source.run_number}")
    return ref, config


def rerun(run_ref: str, *, deployment: str | None = None,
          run_here: FlowRunner | None = None) -> RunRef:
    """Rerun a finished run (stages whose inputs did not change come from the cache)."""
    ref, config = prepare_rerun(run_ref)
    return submit(ref, config, deployment, run_here)


# --- config: show and edit -------------------------------------------------------------------

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
            raise LookupError(f"no registered model named {model_name!r}")
        run = runs.template_run(session, model)
        if run is None:
            raise LookupError(f"model {model_name!r} has no runs to start from")
        return PipelineConfig.model_validate(effective_config(run))


# --- cancel and delete -----------------------------------------------------------------------

def _cancel_flow_runs(flow_run_id: str) -> list[str]:
    """Cancel a flow run and every unfinished flow run under it; returns the ids cancelled.

    A run not yet started is set Cancelled at once; a running one is set Cancelling, and
    the worker that runs it stops its process (Prefect's cancellation).
    """
    import uuid

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId
    from prefect.states import Cancelled, Cancelling

    cancelled: list[str] = []
    with get_client(sync_client=True) as client:
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


class DeleteReport(BaseModel):
    """What deleting a run removed, and what it kept because other runs use it."""

    run: RunRef = Field(description="The deleted run.")
    removed: list[str] = Field(description="Directories and registry versions removed.")
    kept_shared: list[str] = Field(description="Stage outputs kept: other runs use them.")


def _remove(uri: str) -> bool:
    import fsspec

    fs, path = fsspec.core.url_to_fs(uri)
    if not fs.exists(path):
        return False
    fs.rm(path, recursive=True)
    return True


def run_dir(config: dict[str, Any], run: TrainingRun) -> str:
    """`<pipeline_root>/<model>/runs/<run_number>`: files that belong to this run alone."""
    from retrain.settings import get_settings

    root = (config.get("pipeline_root") or get_settings().resolved_pipeline_root()).rstrip("/")
    return f"{root}/{run.registered_model.name}/runs/{run.run_number}"


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
        if _remove(run_dir(run.config, run)):
            removed.append(run_dir(run.config, run))
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


# --- data insights --------------------------------------------------------------------------

def data_insights(run_ref: str):
    """The run's statistics and schema summary, read from its TFDV artifacts.

    Cached stages point at the outputs of the run that produced them, so every run that got
    past SchemaGen has insights. Raises LookupError when StatisticsGen never finished.
    """
    from retrain.adapters.tfdv_insights import read_insights

    with sessions()() as session:
        run = live_run(session, run_ref)
        outputs = {s.stage: (s.status, s.output_uri) for s in run.stages}
        label = f"{run.name} #{run.run_number}"
    status, statistics = outputs["StatisticsGen"]
    if not statistics:
        raise LookupError(f"run {label} has no statistics: StatisticsGen is {status}")
    schema = outputs["SchemaGen"][1]
    report = f"{statistics}/statistics_report.html"
    return read_insights(f"{statistics}/statistics", f"{schema}/schema" if schema else None,
                         html_report=report)


# --- best runs and registered models ---------------------------------------------------------

KEY_METRICS = {"retrieval": "recall_at_100", "multitask": "recall_at_100", "ranking": "rmse"}


def key_metric(run: TrainingRun) -> tuple[str, bool] | None:
    """The metric a run is ranked by, and whether higher is better.

    Recommenders: recall@100 (retrieval, multitask) or RMSE (ranking). User modules: the
    first evaluator metric.
    """
    from retrain.domain.config import LOWER_IS_BETTER, MetricThreshold

    model_type = run.registered_model.model_type
    if model_type in KEY_METRICS:
        name = KEY_METRICS[model_type]
        return name, name not in LOWER_IS_BETTER
    thresholds = (run.config.get("evaluator") or {}).get("metrics") or []
    if not thresholds:
        return None
    threshold = MetricThreshold.model_validate(thresholds[0])
    wanted = threshold.class_name.lower()
    name = next((key for key in run.metrics or {}
                 if key.replace("_", "").lower() == wanted.replace("_", "")), None)
    return (name, threshold.better_higher) if name else None


class BestRun(BaseModel):
    """One entry of the best-runs table."""

    run: RunRef = Field(description="The run.")
    model_type: str = Field(description="Registered model's type.")
    metric: str = Field(description="Key metric.")
    value: float = Field(description="Its value.")
    higher_is_better: bool = Field(description="Direction the table is sorted in.")


def best_runs(model_type: str | None = None, limit: int = 10) -> dict[str, list[BestRun]]:
    """Per model type, its finished runs best first by the type's key metric."""
    table: dict[str, list[BestRun]] = {}
    with sessions()() as session:
        for run in runs.finished_runs(session, model_type):
            key = key_metric(run)
            if key is None or not isinstance((run.metrics or {}).get(key[0]), (int, float)):
                continue
            kind = run.registered_model.model_type or ""
            table.setdefault(kind, []).append(BestRun(
                run=RunRef.of(run), model_type=kind, metric=key[0],
                value=float(run.metrics[key[0]]), higher_is_better=key[1]))
    return {kind: sorted(entries, key=lambda e: -e.value if e.higher_is_better else e.value)[:limit]
            for kind, entries in sorted(table.items())}


class ModelVersion(BaseModel):
    """A registered version and the run that pushed it."""

    version: str = Field(description="MLflow registered version.")
    run: RunRef | None = Field(description="Run that registered it, if recorded here.")
    champion: bool = Field(description="Carries the champion alias (serving).")


class ModelOverview(BaseModel):
    """A registered model as `retrain models list` shows it."""

    name: str = Field(description="Model name.")
    model_type: str | None = Field(description="Model type.")
    runs: int = Field(description="Runs recorded (deleted ones included in numbering).")
    latest_version: str | None = Field(description="Newest registered version.")
    champion_version: str | None = Field(description="Serving version.")
    deployed: bool = Field(description="Whether a version serves.")
    versions: list[ModelVersion] = Field(description="Registered versions, oldest first.")
    schedule: str = Field(description="Schedule status, or `none`.")
    template: RunRef | None = Field(description="Run later runs start from.")


def sync_model(session, model: RegisteredModel) -> None:
    """Refresh latest/champion version and the deployed flags from the MLflow registry."""
    from retrain.adapters import mlflow_registry as registry

    state = registry.registry_state(model.name)
    for run in model.runs:
        version = state.flow_run_versions.get(run.flow_run_id or "")
        if version and run.registered_version is None:
            run.registered_version = version
    runs.mark_deployed(session, model, state.champion, latest=state.latest)
    model.synced_at = utcnow()


def list_models(*, sync: bool = True, name: str | None = None) -> list[ModelOverview]:
    """Registered models with versions, serving state and schedule (synced from MLflow)."""
    with sessions().begin() as session:
        if name is not None:
            model = runs.model_by_name(session, name)
            if model is None:
                raise LookupError(f"no registered model named {name!r}")
            models = [model]
        else:
            models = runs.list_models(session)
        overviews = []
        for model in models:
            if sync:
                sync_model(session, model)
            live = [r for r in model.runs if r.deleted_at is None]
            by_version = {r.registered_version: r for r in sorted(live, key=lambda r: r.run_number)
                          if r.registered_version}
            template = runs.template_run(session, model)
            overviews.append(ModelOverview(
                name=model.name, model_type=model.model_type, runs=model.last_run_number,
                latest_version=model.latest_version, champion_version=model.champion_version,
                deployed=model.deployed,
                versions=[ModelVersion(version=v, run=RunRef.of(r) if r else None,
                                       champion=v == model.champion_version)
                          for v, r in sorted(by_version.items(), key=lambda kv: int(kv[0]))],
                schedule=model.schedule.status if model.schedule else "none",
                template=RunRef.of(template) if template else None,
            ))
        return overviews
