"""Queries of a registered model's serving state: its changes (the champion history) and
the deployed flags they set. Functions take an explicit session."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from retrain.domain.clock import utcnow
from retrain.domain.serving import ChampionStep, ModelAction
from retrain.store.orm import RegisteredModel, ServingChange


def lock_model(session: Session, name: str) -> RegisteredModel | None:
    """The registered model `name`, its row locked until the transaction ends (PostgreSQL:
    FOR UPDATE; SQLite serializes writers itself), so two operations on one model take
    turns."""
    return session.execute(
        select(RegisteredModel).where(RegisteredModel.name == name).with_for_update()
    ).scalar_one_or_none()


def champion_steps(model: RegisteredModel) -> list[ChampionStep]:
    """The model's changes, oldest first, as the champion history reads them."""
    return [ChampionStep(action=ModelAction(change.action), version=change.version,
                         previous_version=change.previous_version)
            for change in model.serving_changes]


def add_change(session: Session, model: RegisteredModel, action: ModelAction, *,
               version: str | None, previous_version: str | None, actor: str,
               **fields: Any) -> ServingChange:
    """Record one change and set what it says serves: the model's deployed flag, version
    and time, its champion (unless undeployed), and the deployed flag of its runs."""
    sequence = (session.execute(
        select(func.max(ServingChange.sequence))
        .where(ServingChange.registered_model_id == model.id)).scalar() or 0) + 1
    change = ServingChange(registered_model=model, sequence=sequence, action=action,
                           version=version, previous_version=previous_version, actor=actor,
                           **fields)
    session.add(change)
    if action != ModelAction.UNDEPLOYED:
        model.champion_version = version
    model.deployed = version is not None
    model.deployed_version = version
    model.deployed_at = utcnow() if version is not None else None
    for run in model.runs:
        run.deployed = version is not None and run.registered_version == version
    session.flush()
    return change


def has_changes(session: Session, model: RegisteredModel) -> bool:
    """Whether retrain recorded any serving change of the model (pushes included)."""
    return session.execute(
        select(ServingChange.id).where(ServingChange.registered_model_id == model.id).limit(1)
    ).first() is not None
