"""Which runs are alive: heartbeats, the model lock of the overlap policy, the runs writing a
stage directory, and the records reconciliation compares with Prefect.

Module-level functions that take an explicit session, like `store/runs.py`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from retrain.domain.clock import utcnow
from retrain.domain.status import TERMINAL, RunStatus, StageStatus
from retrain.store.orm import RegisteredModel, TrainingRun, TrainingStage

OPEN = tuple(status for status in RunStatus if status not in TERMINAL)


def lock_model(session: Session, registered_model_id: str) -> None:
    """Hold the model's row until the transaction ends: a no-op UPDATE, which takes
    PostgreSQL's row lock and SQLite's write lock, so overlap decisions on one model are
    made one at a time."""
    session.execute(
        update(RegisteredModel)
        .where(RegisteredModel.id == registered_model_id)
        .values(last_run_number=RegisteredModel.last_run_number)
    )


def running_runs(session: Session, registered_model_id: str) -> list[TrainingRun]:
    """The model's runs recorded as running by a flow run (alive or not)."""
    return list(session.execute(
        select(TrainingRun).where(
            TrainingRun.registered_model_id == registered_model_id,
            TrainingRun.status == RunStatus.RUNNING,
            TrainingRun.flow_run_id.is_not(None),
            TrainingRun.deleted_at.is_(None),
        )
    ).scalars())


def runs_writing(session: Session, output_uri: str, *, except_run: str) -> list[TrainingRun]:
    """Running runs other than `except_run` with a stage running into `output_uri` (alive
    or not): a stage records its output directory when it starts (`services.overlap`)."""
    return list(session.execute(
        select(TrainingRun).join(TrainingStage)
        .where(TrainingStage.output_uri == output_uri,
               TrainingStage.status == StageStatus.RUNNING,
               TrainingStage.run_id != except_run,
               TrainingRun.status == RunStatus.RUNNING,
               TrainingRun.deleted_at.is_(None))
        .order_by(TrainingRun.run_number)
    ).scalars())


def beat(session: Session, flow_run_id: str, now: dt.datetime | None = None) -> bool:
    """Record a heartbeat of the flow run's record; False once the record has ended (or
    there is none), which tells the heartbeat to stop."""
    result = session.execute(
        update(TrainingRun)
        .where(TrainingRun.flow_run_id == flow_run_id, TrainingRun.status.in_(OPEN))
        .values(heartbeat_at=now or utcnow())
    )
    return bool(result.rowcount)


def open_runs(session: Session) -> list[TrainingRun]:
    """Records not ended yet that belong to a flow run, oldest first."""
    return list(session.execute(
        select(TrainingRun)
        .where(TrainingRun.status.in_(OPEN), TrainingRun.flow_run_id.is_not(None),
               TrainingRun.deleted_at.is_(None))
        .order_by(TrainingRun.created)
    ).scalars())


def recorded_flow_runs(session: Session, flow_run_ids: Iterable[str]) -> set[str]:
    """Which of these flow runs have a record."""
    ids = list(flow_run_ids)
    if not ids:
        return set()
    return set(session.execute(
        select(TrainingRun.flow_run_id).where(TrainingRun.flow_run_id.in_(ids))
    ).scalars())
