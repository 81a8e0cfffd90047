"""Emitting Prefect events: advisory, so emitting never fails the caller.

Inside a flow run Prefect adds the flow run, flow and deployment as related resources
itself; outside one (the CLI) the event carries what the caller gives.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("retrain.events")


def emit(name: str, resource: dict[str, str], related: list[dict[str, str]],
         payload: dict[str, Any]) -> None:
    """Emit event `name` about `resource`; a missing API or a closed client is logged."""
    try:
        from prefect.events import emit_event

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
