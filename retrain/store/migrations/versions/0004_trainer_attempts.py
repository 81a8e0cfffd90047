"""trainer attempts: each submission of a run's Trainer deployment; the Trainer's devices

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trainer_attempt",
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("gpu_type", sa.String(length=64), nullable=True),
        sa.Column("gpu_count", sa.Integer(), nullable=False),
        sa.Column("flow_run_id", sa.String(length=36), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("resumed_from_epoch", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["training_run.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "number"),
    )
    op.create_index(op.f("ix_trainer_attempt_run_id"), "trainer_attempt", ["run_id"],
                    unique=False)
    with op.batch_alter_table("training_run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("trainer_strategy", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("trainer_replicas", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("gpus_visible", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("training_run", schema=None) as batch_op:
        batch_op.drop_column("gpus_visible")
        batch_op.drop_column("trainer_replicas")
        batch_op.drop_column("trainer_strategy")
    op.drop_index(op.f("ix_trainer_attempt_run_id"), table_name="trainer_attempt")
    op.drop_table("trainer_attempt")
