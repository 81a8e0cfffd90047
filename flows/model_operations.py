"""Operations on what serves, as Prefect flows the UI can run: deploy a version, undeploy,
roll back to the previous champion, push a blessed run that was never pushed.

Each is deployed as `<flow>/manual` (prefect.yaml) and does what its `retrain` command does
(`retrain models deploy|undeploy|rollback`, `retrain runs push`), over the same services;
the change is recorded with this flow run as its actor and emitted as
`retrain.model.<action>`. A refused operation fails the flow run with the reason.
"""

from __future__ import annotations

from prefect import flow
from prefect.runtime import flow_run

from retrain.services.views import ServingChangeView


def _actor(requested_by: str | None) -> str:
    name = f"flow run {flow_run.get_name()}"
    return f"{requested_by} ({name})" if requested_by else name


def _flow_run_id() -> str | None:
    return str(flow_run.get_id()) if flow_run.get_id() else None


def push_blessed_run(run_ref: str, *, actor: str, reason: str | None = None,
                     operation_flow_run_id: str | None = None) -> ServingChangeView:
    """Push a blessed run whose push never happened, as its own Pusher would have: the
    same TFX Pusher executor, registration, models.config and record."""
    from retrain.adapters.tfx import prepare_tf_environment
    from retrain.services import serving
    from retrain.services.errors import OperationRefused
    from tasks.pusher import core
    from tasks.pusher.task import push_and_register

    request = serving.push_request(run_ref)
    prepare_tf_environment()
    plan = core.plan(request.config, request.trainer, request.evaluation)
    push = push_and_register(
        plan, request.config, request.trainer, request.evaluation, request.statistics,
        run_flow_run_id=request.run.flow_run_id or "", run_name=request.run.label,
        actor=actor, reason=reason, operation_flow_run_id=operation_flow_run_id)
    if not push.pushed or push.registered_version is None:
        raise OperationRefused(f"run {request.run.label} was not pushed: {push.reason}")
    history = serving.history(request.config.model_name)
    change = next((c for c in reversed(history) if c.version == push.registered_version), None)
    if change is None:
        raise OperationRefused(f"run {request.run.label}: {push.reason}")
    return change


@flow(name="deploy-model", log_prints=True)
def deploy_model(model_name: str, version: str, reason: str | None = None,
                 requested_by: str | None = None) -> ServingChangeView:
    """Make registered `version` of `model_name` the champion and what TF Serving serves.

    Args:
        model_name: Registered model name, e.g. buyer-product-retrieval.
        version: MLflow registered-model version to serve, e.g. 3.
        reason: Why, recorded with the change and sent with its notification.
        requested_by: Who asked (recorded as the actor); empty: the flow run's name.
    """
    from retrain.services import serving

    change = serving.deploy(model_name, version, actor=_actor(requested_by), reason=reason,
                            flow_run_id=_flow_run_id())
    print(change.summary)
    return change


@flow(name="undeploy-model", log_prints=True)
def undeploy_model(model_name: str, reason: str | None = None,
                   requested_by: str | None = None) -> ServingChangeView:
    """Serve nothing for `model_name` (its champion stays the baseline to beat).

    Args:
        model_name: Registered model name, e.g. buyer-product-retrieval.
        reason: Why, recorded with the change and sent with its notification.
        requested_by: Who asked (recorded as the actor); empty: the flow run's name.
    """
    from retrain.services import serving

    change = serving.undeploy(model_name, actor=_actor(requested_by), reason=reason,
                              flow_run_id=_flow_run_id())
    print(change.summary)
    return change


@flow(name="rollback-model", log_prints=True)
def rollback_model(model_name: str, reason: str | None = None,
                   requested_by: str | None = None) -> ServingChangeView:
    """Make the previous champion of `model_name` the champion again, and serve it.

    Args:
        model_name: Registered model name, e.g. buyer-product-retrieval.
        reason: Why, recorded with the change and sent with its notification.
        requested_by: Who asked (recorded as the actor); empty: the flow run's name.
    """
    from retrain.services import serving

    change = serving.rollback(model_name, actor=_actor(requested_by), reason=reason,
                              flow_run_id=_flow_run_id())
    print(change.summary)
    return change


@flow(name="push-run", log_prints=True)
def push_run(run_id: str, reason: str | None = None,
             requested_by: str | None = None) -> ServingChangeView:
    """Push blessed run `run_id` (id or unique prefix) whose push failed or never happened.

    Args:
        run_id: The run record's id, or a unique prefix of it (`retrain runs list`).
        reason: Why, recorded with the change and sent with its notification.
        requested_by: Who asked (recorded as the actor); empty: the flow run's name.
    """
    change = push_blessed_run(run_id, actor=_actor(requested_by), reason=reason,
                              operation_flow_run_id=_flow_run_id())
    print(change.summary)
    return change
