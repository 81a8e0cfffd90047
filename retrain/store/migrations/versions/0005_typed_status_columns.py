"""typed status columns: run, stage, attempt and schedule statuses, stage names, model and
schedule types as enums

Each column keeps its VARCHAR and its lowercase values (stage names stay "ExampleGen" …), so
existing rows are valid as they are; a named CHECK constraint now keeps every write to the
values the domain enums allow. SQLite rebuilds each table (batch mode; `migrate.upgrade`
turns foreign keys off meanwhile so child rows survive); PostgreSQL adds the constraints
with plain ALTER TABLE. A row holding a value outside its enum makes the upgrade fail.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# The values as of this revision (not imported from the domain: a migration never changes).
RUN_STATUSES = ("pending", "scheduled", "submitting", "running", "completed", "not_blessed",
                "failed", "cancelled", "crashed", "skipped")
STAGE_STATUSES = ("pending", "running", "completed", "cached", "failed", "skipped")
STAGES = ("ExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform",
          "Trainer", "Evaluator", "Pusher")
ATTEMPT_OUTCOMES = ("running", "succeeded", "unschedulable", "interrupted", "failed",
                    "cancelled")
SCHEDULE_STATUSES = ("active", "paused", "completed", "cancelled")
MODEL_TYPES = ("retrieval", "ranking", "multitask", "user_module")
SCHEDULE_TYPES = ("once", "hourly", "daily", "weekly", "monthly")

# table -> [(column, values, VARCHAR length, nullable)]; constraints are ck_<table>_<column>.
COLUMNS: dict[str, list[tuple[str, tuple[str, ...], int, bool]]] = {
    "training_run": [("status", RUN_STATUSES, 16, False),
                     ("current_stage", STAGES, 32, True),
                     ("error_stage", STAGES, 32, True)],
    "training_stage": [("stage", STAGES, 32, False),
                       ("status", STAGE_STATUSES, 16, False)],
    "trainer_attempt": [("outcome", ATTEMPT_OUTCOMES, 16, False)],
    "training_schedule": [("status", SCHEDULE_STATUSES, 16, False),
                          ("schedule_type", SCHEDULE_TYPES, 16, False)],
    "registered_model": [("model_type", MODEL_TYPES, 32, True)],
}


def _enum(table: str, column: str, values: tuple[str, ...], length: int) -> sa.Enum:
    return sa.Enum(*values, name=f"ck_{table}_{column}", native_enum=False,
                   create_constraint=True, length=length)


def upgrade() -> None:
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column, values, length, nullable in columns:
                batch_op.alter_column(
                    column, type_=_enum(table, column, values, length),
                    existing_type=sa.String(length=length), existing_nullable=nullable,
                )


def downgrade() -> None:
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column, values, length, nullable in columns:
                batch_op.alter_column(
                    column, type_=sa.String(length=length),
                    existing_type=_enum(table, column, values, length),
                    existing_nullable=nullable,
                )
