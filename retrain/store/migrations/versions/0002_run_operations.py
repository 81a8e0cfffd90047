"""run operations: rerun provenance, edited config, soft delete, stage outputs, deploy state

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 10:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("training_run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("description", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("edited_config", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column("config_edited_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("source_run_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("estimated_seconds", sa.Float(), nullable=True))
        # Existing rows were never deployed: the server default fills them.
        batch_op.add_column(
            sa.Column("deployed", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_training_run_deleted_at"), ["deleted_at"],
                              unique=False)
        batch_op.create_foreign_key(
            "fk_training_run_source_run_id_training_run", "training_run",
            ["source_run_id"], ["id"], ondelete="SET NULL")
    with op.batch_alter_table("training_stage", schema=None) as batch_op:
        batch_op.add_column(sa.Column("output_uri", sa.Text(), nullable=True))
    with op.batch_alter_table("registered_model", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deployed_version", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("template_run_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("registered_model", schema=None) as batch_op:
        batch_op.drop_column("synced_at")
        batch_op.drop_column("template_run_id")
        batch_op.drop_column("deployed_version")
    with op.batch_alter_table("training_stage", schema=None) as batch_op:
        batch_op.drop_column("output_uri")
    with op.batch_alter_table("training_run", schema=None) as batch_op:
        batch_op.drop_constraint("fk_training_run_source_run_id_training_run",
                                 type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_training_run_deleted_at"))
        batch_op.drop_column("deleted_at")
        batch_op.drop_column("deployed")
        batch_op.drop_column("estimated_seconds")
        batch_op.drop_column("source_run_id")
        batch_op.drop_column("config_edited_at")
        batch_op.drop_column("edited_config")
        batch_op.drop_column("description")
