"""A progress artifact per flow run, advanced when each stage completes (cached or not)."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from retrain.domain.stages import STAGES

_artifact_ids: dict[UUID, UUID] = {}
logger = logging.getLogger(__name__)


def advance_progress(task: Any, task_run: Any, state: Any) -> None:
    """on_completion hook: set the run's progress artifact to this stage's position."""
    if task.name not in STAGES or task_run.flow_run_id is None:
        return
    from prefect.client.schemas.actions import ArtifactCreate, ArtifactUpdate

    from retrain.adapters.prefect import prefect_client

    position = STAGES.index(task.name) + 1
    percent = round(100.0 * position / len(STAGES), 1)
    description = f"{task.name} {state.name.lower()} ({position}/{len(STAGES)} stages)"
    try:
        with prefect_client() as client:
            artifact_id = _artifact_ids.get(task_run.flow_run_id)
            if artifact_id is None:
                created = client.create_artifact(
                    ArtifactCreate(
                        type="progress", data=percent, description=description,
                        flow_run_id=task_run.flow_run_id,
                    )
                )
                _artifact_ids[task_run.flow_run_id] = created.id
            else:
                client.update_artifact(
                    artifact_id, ArtifactUpdate(data=percent, description=description)
                )
    except Exception:  # progress is advisory; never fail a stage over it
        logger.warning("could not update the progress artifact", exc_info=True)
