"""Emitting Prefect events: advisory, so emitting never fails the caller.

Inside a flow run Prefect adds the flow run, flow and deployment as related resources
itself; outside one (the CLI) the event carries what the caller gives.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("retrain.events")


def _api_in_reach() -> bool:
    """A Prefect API is configured, or this runs inside a flow or task run (which has one,
    the embedded default's temporary server included)."""
    from prefect.context import FlowRunContext, TaskRunContext
    from prefect.settings import PREFECT_API_URL

    return bool(PREFECT_API_URL.value()) or bool(FlowRunContext.get() or TaskRunContext.get())


def emit(name: str, resource: dict[str, str], related: list[dict[str, str]],
         payload: dict[str, Any]) -> None:
    """Emit event `name` about `resource`; a missing API or a closed client is logged.

    Outside any run and with no PREFECT_API_URL (a `retrain` command on the embedded
    default) nothing is sent: Prefect would start an ephemeral server in this process for
    one event (13-17 s and its log lines in the terminal), and no automation listens there.
    """
    try:
        from prefect.events import emit_event

        if not _api_in_reach():
            logger.info("no Prefect API configured: %s not sent", name)
            return
        emit_event(event=name, resource=resource, related=related, payload=payload)
    except Exception:  # no API, or the events client is closed: the caller goes on
        logger.warning("could not emit %s", name, exc_info=True)


def model_resource(model_name: str) -> dict[str, str]:
    """The event resource of a registered model."""
    return {
        "prefect.resource.id": f"retrain.model.{model_name}",
        "prefect.resource.name": model_name,
        "retrain.model": model_name,
    }
