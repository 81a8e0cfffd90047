"""serving changes: the champion history of a registered model, and when it was deployed

Every push, deploy, undeploy and rollback is one `serving_change` row (who, why, the
version serving after it and the champion it replaced); `registered_model.deployed_at`
says since when the deployed version serves.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ACTIONS = ("pushed", "deployed", "undeployed", "rolled_back")


def upgrade() -> None:
    op.create_table(
        "serving_change",
        sa.Column("registered_model_id", sa.String(length=36), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=True),
        sa.Column("previous_version", sa.String(length=32), nullable=True),
        sa.Column("serving_version", sa.String(length=32), nullable=True),
        sa.Column("serving_uri", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("run_id", sa.String(length=36), nullable=True),
        sa.Column("flow_run_id", sa.String(length=36), nullable=True),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
        sa.CheckConstraint(f"action IN {ACTIONS!r}", name="ck_serving_change_action"),
        sa.ForeignKeyConstraint(["registered_model_id"], ["registered_model.id"],
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["run_id"], ["training_run.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("registered_model_id", "sequence"),
    )
    op.create_index(op.f("ix_serving_change_registered_model_id"), "serving_change",
                    ["registered_model_id"], unique=False)
    with op.batch_alter_table("registered_model", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deployed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("registered_model", schema=None) as batch_op:
        batch_op.drop_column("deployed_at")
    op.drop_index(op.f("ix_serving_change_registered_model_id"), table_name="serving_change")
    op.drop_table("serving_change")
