"""retrain's Prefect automations, as data, and the code that creates or updates them.

  retrain: training run failed
      when a `training-pipeline` flow run enters Failed, Crashed or TimedOut, run the
      `training-run-failure/automation` deployment (flows/run_failure.py) with the flow
      run's id, state name and message: it marks the run failed in the store, recounts its
      schedule's statistics and trips the circuit breaker (N failed runs in a row pause
      the schedule and record why), then emits `retrain.run.failed`.
  retrain: notify failed run
      on `retrain.run.failed`, send a notification with the run's name, error stage and
      message through the notification block.
  retrain: notify schedule paused
      on `retrain.schedule.paused`, send a notification with the reason and how to resume.
  retrain: notify not blessed
      on `retrain.model.not-blessed`, send a notification: the run finished, nothing was
      pushed, and why.
  retrain: notify data drift
      on `retrain.data.drift`, send a notification: which features crossed which data gate
      (drift, skew, empty, constant), by how much, and whether the run was stopped.
  retrain: notify serving change
      on `retrain.model.pushed`, `.deployed`, `.undeployed` and `.rolled-back`, tell the
      serving side (seed 001's inference store, a TF Serving operator): the model, the
      version now served, its serving path and models.config, and the champion it replaced.

`sync_automations` is idempotent: an automation is matched by name and updated, never
duplicated; `sync_on_server` runs it on the configured Prefect server (`retrain automations
sync`). Notifications go through a Prefect notification block named
`<block-type-slug>/<name>`: `custom-webhook/retrain-notifications` by default, which
`sync_automations(webhook_url=...)` creates (JSON `{"subject", "text"}` POSTed to the URL);
any other notification block (e.g. `slack-webhook/alerts`, made in the Prefect UI) works too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from pydantic import BaseModel, Field

from retrain.adapters.prefect import prefect_client

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.events.schemas.automations import AutomationCore

FAILURE_DEPLOYMENT = "training-run-failure/automation"
DEFAULT_BLOCK = "custom-webhook/retrain-notifications"
TRAINING_FLOW = "training-pipeline"
FAILED_STATES = ("Failed", "Crashed", "TimedOut")

FAILED_RUN = "retrain: training run failed"
NOTIFY_FAILED = "retrain: notify failed run"
NOTIFY_PAUSED = "retrain: notify schedule paused"
NOTIFY_NOT_BLESSED = "retrain: notify not blessed"
NOTIFY_DRIFT = "retrain: notify data drift"
NOTIFY_SERVING = "retrain: notify serving change"
SERVING_EVENTS = ("retrain.model.pushed", "retrain.model.deployed", "retrain.model.undeployed",
                  "retrain.model.rolled-back")


class SyncedAutomation(BaseModel):
    """One automation after a sync."""

    name: str = Field(description="Automation name.")
    id: UUID = Field(description="Its Prefect id.")
    created: bool = Field(description="True if new, False if an existing one was updated.")


def _jinja(template: str) -> dict[str, str]:
    """A templated deployment parameter, rendered by the server when the action runs."""
    return {"__prefect_kind": "jinja", "template": template}


def definitions(failure_deployment_id: UUID, block_document_id: UUID) -> list[AutomationCore]:
    """The six automations, for a failure-handler deployment and a notification block."""
    from prefect.events.actions import RunDeployment, SendNotification
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    def on(events: set[str], match: dict[str, Any], related: dict[str, Any] | None = None):
        return EventTrigger(expect=events, match=match, match_related=related or {},
                            posture=Posture.Reactive, threshold=1)

    def notify(name: str, description: str, event: str | set[str], *, subject: str, body: str,
               resource: str = "retrain.run.*"):
        """On a retrain event about a run record (or `resource`), send a notification
        through the block."""
        return AutomationCore(
            name=name, description=description,
            trigger=on({event} if isinstance(event, str) else event,
                       {"prefect.resource.id": resource}),
            actions=[SendNotification(block_document_id=block_document_id, subject=subject,
                                      body=body)],
            tags=["retrain"],
        )

    return [
        AutomationCore(
            name=FAILED_RUN,
            description="Record a failed, crashed or timed-out training run in the store, "
                        "recount its schedule and trip the circuit breaker.",
            trigger=on({f"prefect.flow-run.{state}" for state in FAILED_STATES},
                       {"prefect.resource.id": "prefect.flow-run.*"},
                       {"prefect.resource.role": "flow",
                        "prefect.resource.name": TRAINING_FLOW}),
            actions=[RunDeployment(
                source="selected", deployment_id=failure_deployment_id,
                parameters={
                    "flow_run_id": _jinja("{{ flow_run.id }}"),
                    "state_name": _jinja("{{ flow_run.state.name }}"),
                    "message": _jinja("{{ flow_run.state.message }}"),
                },
            )],
            tags=["retrain"],
        ),
        notify(NOTIFY_FAILED, "Tell people a training run failed: its name, stage and error.",
               "retrain.run.failed",
               subject="retrain: {{ event.payload.run_name }} {{ event.payload.status }}",
               body="Training run {{ event.payload.run_name }} (model "
                    "{{ event.payload.model_name }}) {{ event.payload.status }} at stage "
                    "{{ event.payload.error_stage }}: {{ event.payload.error_message }}. "
                    "Failed runs in a row: {{ event.payload.consecutive_failures }}."),
        notify(NOTIFY_PAUSED, "Tell people the circuit breaker paused a schedule.",
               "retrain.schedule.paused",
               subject="retrain: schedule of {{ event.payload.model_name }} paused",
               body="The schedule of {{ event.payload.model_name }} was paused: "
                    "{{ event.payload.pause_reason }}. Resume it with `retrain schedules "
                    "resume {{ event.payload.model_name }}`."),
        notify(NOTIFY_NOT_BLESSED, "Tell people a run finished but its model was not blessed.",
               "retrain.model.not-blessed",
               subject="retrain: {{ event.payload.run_name }} not blessed",
               body="Training run {{ event.payload.run_name }} (model "
                    "{{ event.payload.model }}) finished but was not blessed, so nothing "
                    "was pushed: {{ event.payload.reason }}"),
        notify(NOTIFY_DRIFT, "Tell people a data gate flagged features of a training run.",
               "retrain.data.drift",
               subject="retrain: data gates flagged {{ event.payload.run_name }}",
               body="Training run {{ event.payload.run_name }} (model {{ event.payload.model }})"
                    ": {% for f in event.payload.findings %}{{ f.message }} ({{ f.action }})"
                    "{% if not loop.last %}; {% endif %}{% endfor %}. The run "
                    "{% if event.payload.stopped %}was stopped at ExampleValidator"
                    "{% else %}went on{% endif %}."),
        notify(NOTIFY_SERVING, "Tell the serving side what a model serves now: after a push, "
                               "deploy, undeploy or rollback.",
               set(SERVING_EVENTS), resource="retrain.model.*",
               subject="retrain: {{ event.payload.model }} {{ event.payload.action }}"
                       "{% if event.payload.version %} v{{ event.payload.version }}{% endif %}",
               body="{{ event.payload.model }}: {{ event.payload.action }} by "
                    "{{ event.payload.actor }}. "
                    "{% if event.payload.version %}Serving version {{ event.payload.version }} "
                    "from {{ event.payload.serving_uri }}"
                    "{% else %}Nothing is served{% endif %} (TF Serving config "
                    "{{ event.payload.config_uri }}). Replaced champion: "
                    "{{ event.payload.replaced_version or 'none' }}."
                    "{% if event.payload.reason %} Reason: {{ event.payload.reason }}{% endif %}"),
    ]


def _notification_block(client: SyncPrefectClient, ref: str, webhook_url: str | None) -> UUID:
    """The block document id for `ref` ("type-slug/name"), creating the webhook one if asked."""
    from prefect.exceptions import ObjectNotFound

    slug, _, name = ref.partition("/")
    if not slug or not name:
        raise ValueError(f"notification block {ref!r} must be <block-type-slug>/<name>, "
                         f"e.g. {DEFAULT_BLOCK} or slack-webhook/alerts")
    if webhook_url is not None:
        if slug != "custom-webhook":
            raise ValueError(f"--webhook-url makes a custom-webhook block, not {slug!r}")
        from prefect.blocks.notifications import CustomWebhookNotificationBlock

        block = CustomWebhookNotificationBlock(
            name=name, url=webhook_url,
            json_data={"subject": "{{subject}}", "text": "{{body}}"},
        )
        return block.save(name, overwrite=True)
    try:
        return client.read_block_document_by_name(name, slug).id
    except ObjectNotFound:
        raise LookupError(
            f"no notification block {ref!r}: pass a webhook URL to create "
            f"{DEFAULT_BLOCK}, or create the block in the Prefect UI") from None


def sync_automations(
    client: SyncPrefectClient, *, block: str = DEFAULT_BLOCK, webhook_url: str | None = None,
    failure_deployment: str = FAILURE_DEPLOYMENT,
) -> list[SyncedAutomation]:
    """Create or update retrain's automations by name; returns them in definition order."""
    from prefect.exceptions import ObjectNotFound

    try:
        failure_id = client.read_deployment_by_name(failure_deployment).id
    except ObjectNotFound:
        raise LookupError(
            f"no Prefect deployment named {failure_deployment!r} for the failure automation "
            f"to run; run `prefect deploy --all` from the repo root") from None
    block_id = _notification_block(client, block, webhook_url)
    synced = []
    for automation in definitions(failure_id, block_id):
        existing = client.read_automations_by_name(automation.name)
        for extra in existing[1:]:  # duplicates from an older, non-idempotent set-up
            client.delete_automation(extra.id)
        if existing:
            client.update_automation(existing[0].id, automation)
            synced.append(SyncedAutomation(name=automation.name, id=existing[0].id,
                                           created=False))
        else:
            synced.append(SyncedAutomation(name=automation.name,
                                           id=client.create_automation(automation),
                                           created=True))
    return synced


def sync_on_server(
    *, block: str = DEFAULT_BLOCK, webhook_url: str | None = None,
) -> list[SyncedAutomation]:
    """`sync_automations` on the server PREFECT_API_URL names (LookupError if it is unset)."""
    with prefect_client(require_server=True) as client:
        return sync_automations(client, block=block, webhook_url=webhook_url)
