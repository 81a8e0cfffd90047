"""What serves for a registered model, changed: push, deploy, undeploy, roll back.

Each operation, under a lock on the model's row: checks what it is asked against the MLflow
registry and the serving directory, writes `models.config` (TF Serving serves exactly the
version it names; `retrain/adapters/tf_serving.py`), moves the MLflow `champion` alias, and
records the change in the store (who, when, why, the champion it replaced). Once committed
it emits `retrain.model.<action>` about the model. A refused operation changes nothing.

The champion history is the store's: a rollback returns to the champion the last push or
deploy replaced, then to the one before it, and so on (`retrain/domain/serving.py`).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from retrain.adapters import mlflow_registry as registry
from retrain.adapters import prefect_events, tf_serving
from retrain.adapters.stage_outputs import read_marker
from retrain.domain.config import PipelineConfig
from retrain.domain.refs import EvaluationOutput, StatisticsOutput, TrainerOutput
from retrain.domain.serving import ModelAction, rollback_target
from retrain.domain.stages import Stage
from retrain.domain.status import RunStatus
from retrain.services.configs import stored_config
from retrain.services.errors import NotFound, OperationRefused
from retrain.services.runs import live_run
from retrain.services.views import RunRef, ServingChangeView
from retrain.store import runs
from retrain.store import serving as serving_store
from retrain.store.orm import RegisteredModel, TrainingRun
from retrain.store.sessions import sessions


class PushedVersion(BaseModel):
    """A version the Pusher has just registered and published."""

    model_name: str = Field(description="Registered model.")
    version: str = Field(description="MLflow registered-model version.")
    serving_uri: str = Field(description="The pushed version directory.")
    serving_version: str = Field(description="Its name: the Pusher's unix-seconds stamp.")


def _model(session, model_name: str) -> RegisteredModel:
    model = serving_store.lock_model(session, model_name)
    if model is None:
        raise NotFound(f"no registered model named {model_name!r}")
    return model


def _run_of(model: RegisteredModel, version: str | None) -> TrainingRun | None:
    return next((run for run in model.runs if version and run.registered_version == version),
                None)


def version_model_type(model_name: str, version: str) -> str | None:
    """The model type (retrieval, ranking, multitask, user_module) of the run that
    registered `version` of `model_name`; None when no such run is on record."""
    with sessions()() as session:
        model = runs.model_by_name(session, model_name)
        run = _run_of(model, version) if model is not None else None
        config = stored_config(run.config) if run is not None else None
        return config.model_type.value if config is not None else None


def _servable(model_name: str, version: str) -> registry.VersionInfo:
    """Registered version `version`, refused unless its version directory is still there."""
    info = registry.version_info(model_name, version)
    if info is None:
        known = ", ".join(registry.registry_state(model_name).versions) or "none"
        raise NotFound(f"{model_name} has no registered version {version!r} "
                       f"(registered: {known})")
    if not info.serving_uri or not (info.serving_version or "").isdigit():
        raise OperationRefused(f"version {version} of {model_name} was not pushed by retrain "
                               f"(no serving directory recorded): it cannot be served")
    if int(info.serving_version) not in tf_serving.version_dirs(
            tf_serving.model_dir_of(info.serving_uri)):
        raise OperationRefused(f"version {version} of {model_name} cannot be served: its "
                               f"directory {info.serving_uri} is gone")
    return info


def announce(change: ServingChangeView) -> ServingChangeView:
    """Emit the change's event about the model (the run it serves related)."""
    related = []
    if change.run is not None:
        related.append({"prefect.resource.id": f"retrain.run.{change.run.id}",
                        "prefect.resource.role": "training-run",
                        "prefect.resource.name": change.run.label})
    prefect_events.emit(change.action.event, prefect_events.model_resource(change.model_name),
                        related, {
                            "model": change.model_name, "action": change.action.value,
                            "version": change.version, "replaced_version": change.previous_version,
                            "serving_version": change.serving_version,
                            "serving_uri": change.serving_uri, "config_uri": change.config_uri,
                            "actor": change.actor, "reason": change.reason,
                            "run_name": change.run.label if change.run else None,
                            "summary": change.summary,
                        })
    return change


def _write_served(model: RegisteredModel, model_dir: str, serving_version: int) -> str:
    """Serve `serving_version` from `model_dir`; a directory that served the model until
    now under another serving base (a run with its own `pusher.serving_base`) is told to
    serve nothing, so one version serves."""
    served = model.deployed_version and registry.version_info(model.name, model.deployed_version)
    if served and served.serving_uri:
        old_dir = tf_serving.model_dir_of(served.serving_uri)
        if old_dir.rstrip("/") != model_dir.rstrip("/"):
            tf_serving.write_config(model.name, old_dir, None)
    return tf_serving.write_config(model.name, model_dir, serving_version)


def _serve(model: RegisteredModel, action: ModelAction, info: registry.VersionInfo, *,
           actor: str, reason: str | None, flow_run_id: str | None, session) -> ServingChangeView:
    """Serve registered version `info` as the champion and record it as `action`."""
    model_dir = tf_serving.model_dir_of(info.serving_uri)
    config_uri = _write_served(model, model_dir, int(info.serving_version))
    previous = model.champion_version
    registry.set_champion(model.name, info.version)
    run = _run_of(model, info.version)
    change = serving_store.add_change(
        session, model, action, version=info.version, previous_version=previous, actor=actor,
        reason=reason, serving_version=info.serving_version, serving_uri=info.serving_uri,
        run_id=run.id if run else None, flow_run_id=flow_run_id)
    return ServingChangeView.of(change, run, config_uri)


def deploy(model_name: str, version: str, *, actor: str, reason: str | None = None,
           flow_run_id: str | None = None) -> ServingChangeView:
    """Make registered `version` the champion and what TF Serving serves."""
    with sessions().begin() as session:
        model = _model(session, model_name)
        if model.deployed and model.deployed_version == version:
            raise OperationRefused(f"version {version} of {model_name} is already deployed")
        info = _servable(model_name, version)
        view = _serve(model, ModelAction.DEPLOYED, info, actor=actor, reason=reason,
                      flow_run_id=flow_run_id, session=session)
    return announce(view)


def undeploy(model_name: str, *, actor: str, reason: str | None = None,
             flow_run_id: str | None = None) -> ServingChangeView:
    """Serve nothing for `model_name`; its champion stays the baseline new runs must beat."""
    with sessions().begin() as session:
        model = _model(session, model_name)
        if not model.deployed:
            raise OperationRefused(f"nothing is deployed for {model_name}")
        served = registry.version_info(model_name, model.deployed_version or "")
        if served is not None and served.serving_uri:
            model_dir = tf_serving.model_dir_of(served.serving_uri)
        else:  # a version deleted from the registry: its directory is still beside the others
            model_dir = _model_dir_from_history(model)
        config_uri = tf_serving.write_config(model_name, model_dir, None) if model_dir else None
        previous = model.deployed_version
        change = serving_store.add_change(
            session, model, ModelAction.UNDEPLOYED, version=None, previous_version=previous,
            actor=actor, reason=reason, flow_run_id=flow_run_id)
        view = ServingChangeView.of(change, None, config_uri)
    return announce(view)


def _model_dir_from_history(model: RegisteredModel) -> str | None:
    uris = [c.serving_uri for c in model.serving_changes if c.serving_uri]
    return tf_serving.model_dir_of(uris[-1]) if uris else None


def rollback(model_name: str, *, actor: str, reason: str | None = None,
             flow_run_id: str | None = None) -> ServingChangeView:
    """Make the previous champion the champion again, and serve it."""
    with sessions().begin() as session:
        model = _model(session, model_name)
        target = rollback_target(serving_store.champion_steps(model),
                                 registry.registry_state(model_name).versions)
        if target is None:
            current = (f"v{model.champion_version} is the champion"
                       if model.champion_version else "it has no champion")
            raise OperationRefused(
                f"cannot roll back {model_name}: {current} and no earlier champion is left "
                f"to return to (`retrain models show {model_name}` lists its history)")
        info = _servable(model_name, target)
        view = _serve(model, ModelAction.ROLLED_BACK, info, actor=actor, reason=reason,
                      flow_run_id=flow_run_id, session=session)
    return announce(view)


def record_push(pushed: PushedVersion, *, actor: str, reason: str | None,
                run_flow_run_id: str | None, flow_run_id: str | None = None,
                ) -> ServingChangeView | None:
    """After the Pusher registered `pushed`: make it the champion and serve it through
    `models.config`, record the push and announce it, all under the model's lock (so a
    deploy or rollback at the same moment lands wholly before or after). None when the
    store has no such model (a push outside retrain's runs): the alias still moves."""
    with sessions().begin() as session:
        model = serving_store.lock_model(session, pushed.model_name)
        current = registry.champion(pushed.model_name)
        registry.set_champion(pushed.model_name, pushed.version)
        if model is None:
            return None
        config_uri = _write_served(model, tf_serving.model_dir_of(pushed.serving_uri),
                                   int(pushed.serving_version))
        run = runs.run_for_flow_run(session, run_flow_run_id) if run_flow_run_id else None
        if run is not None:
            run.registered_version = pushed.version
        change = serving_store.add_change(
            session, model, ModelAction.PUSHED, version=pushed.version,
            previous_version=current.version if current else None, actor=actor,
            reason=reason, serving_version=pushed.serving_version,
            serving_uri=pushed.serving_uri, run_id=run.id if run else None,
            flow_run_id=flow_run_id)
        model.latest_version = pushed.version
        view = ServingChangeView.of(change, run, config_uri)
    return announce(view)


class PushRequest(BaseModel):
    """A blessed run that was not pushed, with what the Pusher needs to push it now."""

    run: RunRef = Field(description="The run.")
    config: PipelineConfig = Field(description="The config it ran with.")
    trainer: TrainerOutput = Field(description="Its Trainer's output (the model).")
    evaluation: EvaluationOutput = Field(description="Its Evaluator's output (the blessing).")
    statistics: StatisticsOutput | None = Field(description="Its data statistics, if kept.")


def push_request(run_ref: str) -> PushRequest:
    """What pushing run `run_ref` needs; refused unless it ended, was blessed and was never
    pushed (its push failed, or the run failed after its Evaluator)."""
    with sessions()() as session:
        run = live_run(session, run_ref)
        label = f"{run.name} #{run.run_number}"
        if run.registered_version:
            raise OperationRefused(f"run {label} was already pushed: version "
                                   f"{run.registered_version} of {run.registered_model.name}")
        if not RunStatus(run.status).terminal:
            raise OperationRefused(f"run {label} is {RunStatus(run.status).value}: push it "
                                   f"once it has ended")
        outputs = {stage.stage: stage for stage in run.stages}
        config = stored_config(run.config)
        ref = RunRef.of(run)
    markers = {stage: read_marker(outputs[stage].output_uri)
               if stage in outputs and outputs[stage].output_uri else None
               for stage in (Stage.TRAINER, Stage.EVALUATOR, Stage.STATISTICS_GEN)}
    if config is None or markers[Stage.TRAINER] is None or markers[Stage.EVALUATOR] is None:
        raise OperationRefused(f"run {label} has no evaluated model to push (its Trainer or "
                               f"Evaluator did not finish, or their artifacts were deleted)")
    evaluation = EvaluationOutput.model_validate(markers[Stage.EVALUATOR])
    if not evaluation.blessed:
        reasons = "; ".join(evaluation.failed_checks) or "its thresholds failed"
        raise OperationRefused(f"run {label} was not blessed ({reasons}): only a blessed model "
                               f"is pushed; a rerun with evaluator.force_bless overrides")
    statistics = markers[Stage.STATISTICS_GEN]
    return PushRequest(run=ref, config=config,
                       trainer=TrainerOutput.model_validate(markers[Stage.TRAINER]),
                       evaluation=evaluation,
                       statistics=StatisticsOutput.model_validate(statistics) if statistics
                       else None)


def history(model_name: str) -> list[ServingChangeView]:
    """Every serving change of `model_name`, oldest first."""
    with sessions()() as session:
        model = runs.model_by_name(session, model_name)
        if model is None:
            raise NotFound(f"no registered model named {model_name!r}")
        return change_views(session, model)


def change_views(session, model: RegisteredModel) -> list[ServingChangeView]:
    """The model's serving changes as views, oldest first, each with its run."""
    return [ServingChangeView.of(change, session.get(TrainingRun, change.run_id)
                                 if change.run_id else None)
            for change in model.serving_changes]


def served_versions(model_name: str, serving_base: str) -> list[int]:
    """What TF Serving would load for `model_name` under `serving_base` right now."""
    model_dir = f"{serving_base.rstrip('/')}/{model_name}"
    return tf_serving.served_versions(model_name, model_dir)
