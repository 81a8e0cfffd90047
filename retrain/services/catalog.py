"""What is recorded, read back: runs (list, show, config), the best runs per model type,
registered models synced from MLflow, whether a name is free, a run's data insights.

Each function owns its session and returns views (`views.py`); none changes a run, except
that listing models refreshes their versions from the MLflow registry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from retrain.domain.clock import aware, utcnow
from retrain.domain.config import LOWER_IS_BETTER, check_model_name
from retrain.domain.recommender import ModelType
from retrain.domain.stages import Stage
from retrain.domain.status import RunStatus, ScheduleStatus
from retrain.services.configs import run_dir, stored_config
from retrain.services.errors import NotFound
from retrain.services.runs import effective_config, live_run
from retrain.services.serving import change_views
from retrain.services.views import (
    BestRun,
    ModelOverview,
    ModelVersion,
    NameCheck,
    RunConfig,
    RunDetail,
    RunListItem,
    RunRef,
)
from retrain.store import runs, serving
from retrain.store.orm import RegisteredModel, TrainingRun
from retrain.store.sessions import sessions

if TYPE_CHECKING:  # TFDV's reader loads only when insights are asked for
    from retrain.adapters.tfdv_insights import DataInsights

# --- runs ------------------------------------------------------------------------------------


def list_runs(*, model_name: str | None = None, status: RunStatus | None = None,
              limit: int = 50) -> list[RunListItem]:
    """Newest runs first (deleted ones left out), optionally of one model and/or status."""
    with sessions()() as session:
        return [RunListItem.of_run(run) for run in runs.list_runs(
            session, model_name=model_name, status=status, limit=limit)]


def run_detail(run_ref: str) -> RunDetail:
    """One run (id or unique prefix) with its stages, attempts, epochs and outcome; a
    deleted run is shown too, marked deleted."""
    with sessions()() as session:
        run = runs.get_run(session, run_ref)
        return RunDetail.of_run(run, run_dir(run))


def run_config(run_ref: str) -> RunConfig:
    """The config snapshot later runs of this run start from (as edited, if it was)."""
    with sessions()() as session:
        run = runs.get_run(session, run_ref)
        return RunConfig(run=RunRef.of(run), config=effective_config(run),
                         edited=run.edited_config is not None, edited_at=run.config_edited_at)


def data_insights(run_ref: str) -> DataInsights:
    """The run's statistics and schema summary, read from its TFDV artifacts.

    Cached stages point at the outputs of the run that produced them, so every run that got
    past SchemaGen has insights. Raises NotFound when StatisticsGen never finished.
    """
    from retrain.adapters.tfdv_insights import read_insights

    with sessions()() as session:
        run = live_run(session, run_ref)
        outputs = {s.stage: (s.status, s.output_uri) for s in run.stages}
        label = f"{run.name} #{run.run_number}"
    status, statistics = outputs[Stage.STATISTICS_GEN]
    if not statistics:
        raise NotFound(f"run {label} has no statistics: StatisticsGen is {status}")
    schema = outputs[Stage.SCHEMA_GEN][1]
    report = f"{statistics}/statistics_report.html"
    return read_insights(f"{statistics}/statistics", f"{schema}/schema" if schema else None,
                         html_report=report)


# --- best runs -------------------------------------------------------------------------------

KEY_METRICS = {ModelType.RETRIEVAL: "recall_at_100", ModelType.MULTITASK: "recall_at_100",
               ModelType.RANKING: "rmse"}


def _model_type(model: RegisteredModel) -> ModelType | None:
    return ModelType(model.model_type) if model.model_type else None


def key_metric(run: TrainingRun) -> tuple[str, bool] | None:
    """The metric a run is ranked by, and whether higher is better.

    Recommenders: recall@100 (retrieval, multitask) or RMSE (ranking). User modules: the
    first evaluator metric of the stored config.
    """
    model_type = _model_type(run.registered_model)
    if model_type in KEY_METRICS:
        name = KEY_METRICS[model_type]
        return name, name not in LOWER_IS_BETTER
    config = stored_config(run.config)
    if config is None or not config.evaluator.metrics:
        return None
    threshold = config.evaluator.metrics[0]
    wanted = threshold.class_name.lower()
    name = next((key for key in run.metrics or {}
                 if key.replace("_", "").lower() == wanted.replace("_", "")), None)
    return (name, threshold.better_higher) if name else None


def best_runs(model_type: ModelType | None = None,
              limit: int = 10) -> dict[str, list[BestRun]]:
    """Per model type (its value; "" for none), its finished runs best first by the type's
    key metric."""
    wanted = ModelType(model_type) if model_type else None
    table: dict[str, list[BestRun]] = {}
    with sessions()() as session:
        for run in runs.finished_runs(session, wanted.value if wanted else None):
            key = key_metric(run)
            if key is None or not isinstance((run.metrics or {}).get(key[0]), (int, float)):
                continue
            kind = _model_type(run.registered_model)
            table.setdefault(kind.value if kind else "", []).append(BestRun(
                run=RunRef.of(run), model_type=kind, metric=key[0],
                value=float(run.metrics[key[0]]), higher_is_better=key[1]))
    return {kind: sorted(entries, key=lambda e: -e.value if e.higher_is_better else e.value)[:limit]
            for kind, entries in sorted(table.items())}


# --- registered models -----------------------------------------------------------------------

def sync_model(session, model: RegisteredModel) -> None:
    """Refresh latest/champion version and the deployed flags from the MLflow registry."""
    from retrain.adapters import mlflow_registry as registry

    state = registry.registry_state(model.name)
    for run in model.runs:
        version = state.flow_run_versions.get(run.flow_run_id or "")
        if version and run.registered_version is None:
            run.registered_version = version
    if serving.has_changes(session, model):
        # What serves is what retrain's own operations wrote (an undeployed champion
        # serves nothing); the registry says who is champion and the newest version.
        model.champion_version = state.champion
        model.latest_version = state.latest
    else:  # pushed before serving changes were recorded: the champion serves
        runs.mark_deployed(session, model, state.champion, latest=state.latest)
    model.synced_at = utcnow()


def _overview(session, model: RegisteredModel) -> ModelOverview:
    live = [r for r in model.runs if r.deleted_at is None]
    by_version = {r.registered_version: r for r in sorted(live, key=lambda r: r.run_number)
                  if r.registered_version}
    template = runs.template_run(session, model)
    return ModelOverview(
        name=model.name, model_type=_model_type(model), runs=model.last_run_number,
        latest_version=model.latest_version, champion_version=model.champion_version,
        deployed=model.deployed, deployed_version=model.deployed_version,
        deployed_at=aware(model.deployed_at),
        versions=[ModelVersion(version=v, run=RunRef.of(r) if r else None,
                               champion=v == model.champion_version)
                  for v, r in sorted(by_version.items(), key=lambda kv: int(kv[0]))],
        schedule=ScheduleStatus(model.schedule.status) if model.schedule else None,
        template=RunRef.of(template) if template else None,
    )


def list_models(*, sync: bool = True, name: str | None = None) -> list[ModelOverview]:
    """Registered models with versions, serving state and schedule (synced from MLflow)."""
    with sessions().begin() as session:
        if name is not None:
            model = runs.model_by_name(session, name)
            if model is None:
                raise NotFound(f"no registered model named {name!r}")
            models = [model]
        else:
            models = runs.list_models(session)
        overviews = []
        for model in models:
            if sync:
                sync_model(session, model)
            overview = _overview(session, model)
            if name is not None:  # `models show`: the serving history too
                overview.history = change_views(session, model)
            overviews.append(overview)
        return overviews


def check_name(name: str) -> NameCheck:
    """Whether `name` is free for a new registered model (ValueError if it is not a valid
    name)."""
    check_model_name(name)
    with sessions()() as session:
        model = runs.model_by_name(session, name)
        if model is None:
            return NameCheck(name=name, taken=False)
        return NameCheck(
            name=name, taken=True, runs=model.last_run_number,
            schedule=ScheduleStatus(model.schedule.status) if model.schedule else None)
