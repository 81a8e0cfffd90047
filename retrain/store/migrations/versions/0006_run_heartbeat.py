"""run heartbeat and admission: when the process running a flow run last said it was
alive, and when the model's overlap policy let the run go

A run whose record says running but whose heartbeat stopped lost its process (a killed
worker, a lost node) before its hooks could write; reconciliation ends it crashed, and the
overlap policy stops counting it as active.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("training_run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("admitted_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("training_run", schema=None) as batch_op:
        batch_op.drop_column("admitted_at")
        batch_op.drop_column("heartbeat_at")
