"""The run view's live artifacts: a progress artifact per flow run, advanced when each stage
completes (cached or not) and, inside long stages, as their cores report rows or bytes done or
the Trainer finishes an epoch; and the Trainer's epochs table, a row added after every epoch.

Both belong to the training flow run, also when the Trainer runs in another process or pod
(the gpu-trainer flow): that process finds them on the server by flow run, type and key."""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any
from uuid import UUID

from retrain.domain.epochs import epoch_row, upsert_row
from retrain.domain.progress import Progress, Sink
from retrain.domain.refs import EpochMetrics
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
            if artifact_id is None:  # made by another process of the run (the Trainer's pod)?
                found = _find_artifact(client, flow_run_id, "progress")
                artifact_id = _artifact_ids[flow_run_id] = found.id if found else None
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


def _find_artifact(client: Any, flow_run_id: UUID, kind: str, key: str | None = None) -> Any:
    """The flow run's newest artifact of this type (and key), or None."""
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
        ArtifactFilterType,
    )
    from prefect.client.schemas.sorting import ArtifactSort

    match = ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
                           type=ArtifactFilterType(any_=[kind]))
    if key:
        match.key = ArtifactFilterKey(any_=[key])
    found = client.read_artifacts(artifact_filter=match, sort=ArtifactSort.CREATED_DESC,
                                  limit=1)
    return found[0] if found else None


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


def epochs_key(model_name: str) -> str:
    """The epochs table artifact's key: `<model>-epochs` (Prefect keys: a-z, 0-9, dashes)."""
    return re.sub(r"[^a-z0-9-]", "-", f"{model_name.lower()}-epochs")


class EpochTableSink:
    """Epoch sink (tasks.trainer.epochs) for the run view: after every epoch, the run's
    epochs table artifact gains the epoch's row (loss, validation loss, recall@K or RMSE/MAE,
    seconds) and its progress artifact says how many epochs of the total are done.

    A resumed or retried Trainer (another pod, another process) continues the same table:
    rows already there are kept and a repeated epoch replaces its row."""

    def __init__(self, flow_run_id: Any, model_name: str):
        self._flow_run_id = UUID(str(flow_run_id)) if flow_run_id else None
        self._key = epochs_key(model_name)
        self._artifact_id: UUID | None = None
        self._rows: list[dict] = []

    def on_epoch(self, record: EpochMetrics) -> None:
        """Add the epoch's row to the table and advance the Trainer's share of progress."""
        if self._flow_run_id is None:
            return
        self._update_table(record)
        position = STAGES.index(Stage.TRAINER)
        fraction = record.epoch / record.total_epochs
        percent = round(100.0 * (position + min(1.0, fraction)) / len(STAGES), 1)
        set_progress(self._flow_run_id, percent,
                     f"{Stage.TRAINER}: epoch {record.epoch} of {record.total_epochs} done")

    def _update_table(self, record: EpochMetrics) -> None:
        from prefect.client.schemas.actions import ArtifactCreate, ArtifactUpdate

        from retrain.adapters.prefect import prefect_client

        try:
            with prefect_client() as client:
                if self._artifact_id is None:
                    found = _find_artifact(client, self._flow_run_id, "table", self._key)
                    if found is not None:
                        self._artifact_id = found.id
                        rows = found.data or []
                        self._rows = json.loads(rows) if isinstance(rows, str) else rows
                self._rows = upsert_row(self._rows, epoch_row(record))
                data = json.dumps(self._rows)
                description = (f"Trainer epochs: {record.epoch} of {record.total_epochs} "
                               "done")
                if self._artifact_id is None:
                    created = client.create_artifact(ArtifactCreate(
                        key=self._key, type="table", data=data, description=description,
                        flow_run_id=self._flow_run_id))
                    self._artifact_id = created.id
                else:
                    client.update_artifact(self._artifact_id,
                                           ArtifactUpdate(data=data, description=description))
        except Exception:  # the table is advisory; never fail training over it
            logger.warning("could not update the epochs table artifact", exc_info=True)
