"""retention: versioned policies, runs and steps, the batch journal, policy locks

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 07:45:00.000000
"""

from alembic import op
import sqlalchemy as sa
import service.db


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('retention_policies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('store', sa.String(length=100), nullable=False),
    sa.Column('category', sa.String(length=100), nullable=False),
    sa.Column('origin', sa.String(length=10), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_scheduled_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_retention_policies')),
    sa.UniqueConstraint('key', name=op.f('uq_retention_policies_key'))
    )
    with op.batch_alter_table('retention_policies', schema=None) as batch_op:
        batch_op.create_index('ix_retention_policies_store_category', ['store', 'category'], unique=False)

    op.create_table('retention_policy_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('policy_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('retain_for', sa.String(length=40), nullable=False),
    sa.Column('action', sa.String(length=10), nullable=False),
    sa.Column('basis', sa.Text(), nullable=False),
    sa.Column('schedule', sa.String(length=100), nullable=False),
    sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['policy_id'], ['retention_policies.id'], name=op.f('fk_retention_policy_versions_policy_id_retention_policies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_retention_policy_versions')),
    sa.UniqueConstraint('policy_id', 'version', name=op.f('uq_retention_policy_versions_policy_id'))
    )
    with op.batch_alter_table('retention_policy_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_retention_policy_versions_policy_id'), ['policy_id'], unique=False)

    op.create_table('retention_runs',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('policy_id', sa.Integer(), nullable=True),
    sa.Column('dry_run', sa.Boolean(), nullable=False),
    sa.Column('trigger', sa.String(length=20), nullable=False),
    sa.Column('requested_by', sa.String(length=100), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('active_key', sa.String(length=120), nullable=True),
    sa.Column('source_run_id', sa.String(length=36), nullable=True),
    sa.Column('as_of', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('lease_token', sa.String(length=32), nullable=True),
    sa.Column('lease_expires_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('certificate', sa.Text(), nullable=True),
    sa.Column('certificate_sha256', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['policy_id'], ['retention_policies.id'], name=op.f('fk_retention_runs_policy_id_retention_policies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_retention_runs')),
    sa.UniqueConstraint('active_key', name=op.f('uq_retention_runs_active_key'))
    )
    with op.batch_alter_table('retention_runs', schema=None) as batch_op:
        batch_op.create_index('ix_retention_runs_created_at', ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_retention_runs_policy_id'), ['policy_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_retention_runs_state'), ['state'], unique=False)

    op.create_table('retention_locks',
    sa.Column('policy_id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.String(length=36), nullable=False),
    sa.Column('acquired_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['policy_id'], ['retention_policies.id'], name=op.f('fk_retention_locks_policy_id_retention_policies')),
    sa.ForeignKeyConstraint(['run_id'], ['retention_runs.id'], name=op.f('fk_retention_locks_run_id_retention_runs')),
    sa.PrimaryKeyConstraint('policy_id', name=op.f('pk_retention_locks'))
    )
    with op.batch_alter_table('retention_locks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_retention_locks_run_id'), ['run_id'], unique=False)

    op.create_table('retention_steps',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.String(length=36), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('policy_id', sa.Integer(), nullable=False),
    sa.Column('policy_key', sa.String(length=100), nullable=False),
    sa.Column('policy_version', sa.Integer(), nullable=False),
    sa.Column('store', sa.String(length=100), nullable=False),
    sa.Column('category', sa.String(length=100), nullable=False),
    sa.Column('action', sa.String(length=10), nullable=False),
    sa.Column('retain_for', sa.String(length=40), nullable=False),
    sa.Column('cutoff', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('destroyed', sa.Integer(), nullable=False),
    sa.Column('key_digest', sa.String(length=64), nullable=True),
    sa.Column('skipped', sa.JSON(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('started_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['policy_id'], ['retention_policies.id'], name=op.f('fk_retention_steps_policy_id_retention_policies')),
    sa.ForeignKeyConstraint(['run_id'], ['retention_runs.id'], name=op.f('fk_retention_steps_run_id_retention_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_retention_steps')),
    sa.UniqueConstraint('run_id', 'position', name=op.f('uq_retention_steps_run_id'))
    )
    with op.batch_alter_table('retention_steps', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_retention_steps_policy_id'), ['policy_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_retention_steps_run_id'), ['run_id'], unique=False)

    op.create_table('retention_batches',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('step_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=True),
    sa.Column('keys', sa.JSON(), nullable=True),
    sa.Column('recorded_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['step_id'], ['retention_steps.id'], name=op.f('fk_retention_batches_step_id_retention_steps')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_retention_batches')),
    sa.UniqueConstraint('step_id', 'seq', name=op.f('uq_retention_batches_step_id'))
    )
    with op.batch_alter_table('retention_batches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_retention_batches_step_id'), ['step_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('retention_batches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_retention_batches_step_id'))

    op.drop_table('retention_batches')
    with op.batch_alter_table('retention_steps', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_retention_steps_run_id'))
        batch_op.drop_index(batch_op.f('ix_retention_steps_policy_id'))

    op.drop_table('retention_steps')
    with op.batch_alter_table('retention_locks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_retention_locks_run_id'))

    op.drop_table('retention_locks')
    with op.batch_alter_table('retention_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_retention_runs_state'))
        batch_op.drop_index(batch_op.f('ix_retention_runs_policy_id'))
        batch_op.drop_index('ix_retention_runs_created_at')

    op.drop_table('retention_runs')
    with op.batch_alter_table('retention_policy_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_retention_policy_versions_policy_id'))

    op.drop_table('retention_policy_versions')
    with op.batch_alter_table('retention_policies', schema=None) as batch_op:
        batch_op.drop_index('ix_retention_policies_store_category')

    op.drop_table('retention_policies')
