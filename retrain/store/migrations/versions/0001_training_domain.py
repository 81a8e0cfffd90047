"""training domain: registered models, runs, stages, epochs, schedules

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-23 03:58:35.582163
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('registered_model',
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('model_type', sa.String(length=32), nullable=True),
    sa.Column('last_run_number', sa.Integer(), nullable=False),
    sa.Column('latest_version', sa.String(length=32), nullable=True),
    sa.Column('champion_version', sa.String(length=32), nullable=True),
    sa.Column('deployed', sa.Boolean(), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('training_run',
    sa.Column('registered_model_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('run_number', sa.Integer(), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('current_stage', sa.String(length=32), nullable=True),
    sa.Column('current_epoch', sa.Integer(), nullable=True),
    sa.Column('total_epochs', sa.Integer(), nullable=True),
    sa.Column('metrics', sa.JSON(), nullable=True),
    sa.Column('artifacts', sa.JSON(), nullable=True),
    sa.Column('blessed', sa.Boolean(), nullable=True),
    sa.Column('blessing', sa.JSON(), nullable=True),
    sa.Column('forced_reason', sa.Text(), nullable=True),
    sa.Column('estimated_cost', sa.Float(), nullable=True),
    sa.Column('cost', sa.Float(), nullable=True),
    sa.Column('duration_seconds', sa.Float(), nullable=True),
    sa.Column('error_stage', sa.String(length=32), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('flow_run_id', sa.String(length=36), nullable=True),
    sa.Column('mlflow_run_id', sa.String(length=64), nullable=True),
    sa.Column('registered_version', sa.String(length=32), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.ForeignKeyConstraint(['registered_model_id'], ['registered_model.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('flow_run_id'),
    sa.UniqueConstraint('registered_model_id', 'run_number')
    )
    with op.batch_alter_table('training_run', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_training_run_registered_model_id'), ['registered_model_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_training_run_status'), ['status'], unique=False)

    op.create_table('training_schedule',
    sa.Column('registered_model_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('schedule_type', sa.String(length=16), nullable=False),
    sa.Column('scheduled_datetime', sa.DateTime(timezone=True), nullable=True),
    sa.Column('schedule_time', sa.String(length=5), nullable=True),
    sa.Column('schedule_day_of_week', sa.Integer(), nullable=True),
    sa.Column('schedule_day_of_month', sa.Integer(), nullable=True),
    sa.Column('schedule_timezone', sa.String(length=64), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('prefect_deployment_id', sa.String(length=36), nullable=True),
    sa.Column('last_run_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('next_run_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('total_runs', sa.Integer(), nullable=False),
    sa.Column('successful_runs', sa.Integer(), nullable=False),
    sa.Column('failed_runs', sa.Integer(), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.ForeignKeyConstraint(['registered_model_id'], ['registered_model.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('registered_model_id')
    )
    op.create_table('training_metrics_history',
    sa.Column('run_id', sa.String(length=36), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('seconds', sa.Float(), nullable=True),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['training_run.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('run_id', 'epoch')
    )
    with op.batch_alter_table('training_metrics_history', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_training_metrics_history_run_id'), ['run_id'], unique=False)

    op.create_table('training_stage',
    sa.Column('run_id', sa.String(length=36), nullable=False),
    sa.Column('stage', sa.String(length=32), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('seconds', sa.Float(), nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['training_run.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('run_id', 'stage')
    )
    with op.batch_alter_table('training_stage', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_training_stage_run_id'), ['run_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('training_stage', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_training_stage_run_id'))

    op.drop_table('training_stage')
    with op.batch_alter_table('training_metrics_history', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_training_metrics_history_run_id'))

    op.drop_table('training_metrics_history')
    op.drop_table('training_schedule')
    with op.batch_alter_table('training_run', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_training_run_status'))
        batch_op.drop_index(batch_op.f('ix_training_run_registered_model_id'))

    op.drop_table('training_run')
    op.drop_table('registered_model')
