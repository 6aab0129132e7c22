"""dsar requests

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 07:42:35.123426
"""

from alembic import op
import sqlalchemy as sa
import service.db


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('dsar_requests',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('app_id', sa.Integer(), nullable=False),
    sa.Column('type', sa.String(length=30), nullable=False),
    sa.Column('status', sa.String(length=30), nullable=False),
    sa.Column('jurisdiction', sa.String(length=20), nullable=False),
    sa.Column('subject_keys', sa.JSON(), nullable=False),
    sa.Column('subject', sa.LargeBinary(), nullable=False),
    sa.Column('contact', sa.LargeBinary(), nullable=True),
    sa.Column('details', sa.LargeBinary(), nullable=True),
    sa.Column('received_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('due_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('extended_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('extension_reason', sa.Text(), nullable=True),
    sa.Column('verified_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('verified_by', sa.String(length=100), nullable=True),
    sa.Column('code_hash', sa.String(length=64), nullable=True),
    sa.Column('code_expires_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('code_attempts', sa.Integer(), nullable=False),
    sa.Column('closed_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('certificate', sa.Text(), nullable=True),
    sa.Column('export_path', sa.String(length=500), nullable=True),
    sa.Column('export_key', sa.LargeBinary(), nullable=True),
    sa.Column('export_expires_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('consent_result', sa.JSON(), nullable=True),
    sa.Column('hold_id', sa.String(length=36), nullable=True),
    sa.Column('lifted_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lifted_by', sa.String(length=100), nullable=True),
    sa.Column('lift_reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_dsar_requests_app_id_apps')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dsar_requests'))
    )
    with op.batch_alter_table('dsar_requests', schema=None) as batch_op:
        batch_op.create_index('ix_dsar_requests_app_status', ['app_id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_dsar_requests_due_at'), ['due_at'], unique=False)

    op.create_table('notifications',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('app_id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('recipient', sa.LargeBinary(), nullable=False),
    sa.Column('body', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_notifications_app_id_apps')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications'))
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notifications_request_id'), ['request_id'], unique=False)

    op.create_table('dsar_download_tokens',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('request_id', sa.String(length=36), nullable=False),
    sa.Column('expires_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['request_id'], ['dsar_requests.id'], name=op.f('fk_dsar_download_tokens_request_id_dsar_requests')),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_dsar_download_tokens'))
    )
    with op.batch_alter_table('dsar_download_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dsar_download_tokens_request_id'), ['request_id'], unique=False)

    op.create_table('dsar_tasks',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('request_id', sa.String(length=36), nullable=False),
    sa.Column('store', sa.String(length=100), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('counts', sa.JSON(), nullable=False),
    sa.Column('kept', sa.JSON(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('lease_until', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['dsar_requests.id'], name=op.f('fk_dsar_tasks_request_id_dsar_requests')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dsar_tasks'))
    )
    with op.batch_alter_table('dsar_tasks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dsar_tasks_request_id'), ['request_id'], unique=False)
        batch_op.create_index('ix_dsar_tasks_state', ['state'], unique=False)

    op.create_table('dsar_dispatch',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('task_id', sa.String(length=36), nullable=False),
    sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('dispatched_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['task_id'], ['dsar_tasks.id'], name=op.f('fk_dsar_dispatch_task_id_dsar_tasks')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dsar_dispatch'))
    )
    with op.batch_alter_table('dsar_dispatch', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dsar_dispatch_dispatched_at'), ['dispatched_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_dsar_dispatch_task_id'), ['task_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('dsar_dispatch', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dsar_dispatch_task_id'))
        batch_op.drop_index(batch_op.f('ix_dsar_dispatch_dispatched_at'))

    op.drop_table('dsar_dispatch')
    with op.batch_alter_table('dsar_tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_dsar_tasks_state')
        batch_op.drop_index(batch_op.f('ix_dsar_tasks_request_id'))

    op.drop_table('dsar_tasks')
    with op.batch_alter_table('dsar_download_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dsar_download_tokens_request_id'))

    op.drop_table('dsar_download_tokens')
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notifications_request_id'))

    op.drop_table('notifications')
    with op.batch_alter_table('dsar_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dsar_requests_due_at'))
        batch_op.drop_index('ix_dsar_requests_app_status')

    op.drop_table('dsar_requests')
