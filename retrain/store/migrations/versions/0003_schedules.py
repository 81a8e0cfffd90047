"""schedules: runs linked to their schedule, skipped late runs, schedule policy and state

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("training_schedule", schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            "last_day_of_month", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("slug", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("source_run_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("prefect_deployment_name", sa.String(length=200),
                                      nullable=True))
        batch_op.add_column(sa.Column(
            "max_lateness_seconds", sa.Integer(), nullable=False, server_default="3600"))
        batch_op.add_column(sa.Column(
            "pause_after_failures", sa.Integer(), nullable=False, server_default="3"))
        batch_op.add_column(sa.Column(
            "skipped_runs", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column(
            "consecutive_failures", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("status_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("status_changed_at", sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.create_unique_constraint("uq_training_schedule_slug", ["slug"])
    with op.batch_alter_table("training_run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("schedule_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("lateness_seconds", sa.Float(), nullable=True))
        batch_op.create_index(batch_op.f("ix_training_run_schedule_id"), ["schedule_id"],
                              unique=False)
        batch_op.create_foreign_key(
            "fk_training_run_schedule_id_training_schedule", "training_schedule",
            ["schedule_id"], ["id"], ondelete="SET NULL")


def downgrade() -> None:
    with op.batch_alter_table("training_run", schema=None) as batch_op:
        batch_op.drop_constraint("fk_training_run_schedule_id_training_schedule",
                                 type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_training_run_schedule_id"))
        batch_op.drop_column("lateness_seconds")
        batch_op.drop_column("schedule_id")
    with op.batch_alter_table("training_schedule", schema=None) as batch_op:
        batch_op.drop_constraint("uq_training_schedule_slug", type_="unique")
        for column in ("status_changed_at", "status_reason", "consecutive_failures",
                       "skipped_runs", "pause_after_failures", "max_lateness_seconds",
                       "prefect_deployment_name", "source_run_id", "slug",
                       "last_day_of_month"):
            batch_op.drop_column(column)
