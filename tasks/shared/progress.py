"""A progress artifact per flow run: advanced when each stage completes (cached or not) and,
inside long stages, as their cores report rows or bytes done."""

from __future__ import annotations

import logging
import time
from typing import Any
from uuid import UUID

from retrain.domain.progress import Progress, Sink
from retrain.domain.stages import STAGES, Stage

_artifact_ids: dict[UUID, UUID] = {}
logger = logging.getLogger(__name__)
# Inside a stage, the artifact and the log are updated at most this often (and at the end).
REPORT_EVERY_S = 5.0


def set_progress(flow_run_id: UUID, percent: float, description: str) -> None:
    """Create or update the flow run's progress artifact; never fails the caller."""
    from prefect.client.schemas.actions import ArtifactCreate, ArtifactUpdate

    from retrain.adapters.prefect import prefect_client

    try:
        with prefect_client() as client:
            artifact_id = _artifact_ids.get(flow_run_id)
            if artifact_id is None:
                created = client.create_artifact(
                    ArtifactCreate(
                        type="progress", data=percent, description=description,
                        flow_run_id=flow_run_id,
                    )
                )
                _artifact_ids[flow_run_id] = created.id
            else:
                client.update_artifact(
                    artifact_id, ArtifactUpdate(data=percent, description=description)
                )
    except Exception:  # progress is advisory; never fail a stage over it
        logger.warning("could not update the progress artifact", exc_info=True)


def advance_progress(task: Any, task_run: Any, state: Any) -> None:
    """on_completion hook: set the run's progress artifact to this stage's position."""
    if task.name not in STAGES or task_run.flow_run_id is None:
        return
    position = STAGES.index(task.name) + 1
    percent = round(100.0 * position / len(STAGES), 1)
    description = f"{task.name} {state.name.lower()} ({position}/{len(STAGES)} stages)"
    set_progress(task_run.flow_run_id, percent, description)


def stage_sink(stage: Stage, flow_run_id: UUID | None, run_logger: Any) -> Sink:
    """Where a stage core's `report`s go: the run's log and its progress artifact."""
    position = STAGES.index(stage)
    last = [float("-inf")]
    run_id = UUID(str(flow_run_id)) if flow_run_id is not None else None

    def sink(progress: Progress) -> None:
        now = time.monotonic()
        if progress.fraction < 1.0 and now - last[0] < REPORT_EVERY_S:
            return
        last[0] = now
        run_logger.info("%s: %s", stage, progress.describe())
        if run_id is not None:
            percent = round(100.0 * (position + progress.fraction) / len(STAGES), 1)
            set_progress(run_id, percent, f"{stage}: {progress.describe()}")

    return sink
