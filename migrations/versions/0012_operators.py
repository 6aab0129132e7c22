"""operators: the console's named accounts, their server-side sessions and one-time set-up links

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29 12:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

import service.db

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'operators',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('email', sa.String(254), nullable=False),
        sa.Column('role', sa.String(20), nullable=False),
        sa.Column('app_ids', sa.JSON(), nullable=True),
        sa.Column('password_hash', sa.String(200), nullable=True),
        sa.Column('totp_secret', sa.LargeBinary(), nullable=True),
        sa.Column('totp_enabled_at', service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('totp_last_step', sa.BigInteger(), nullable=True),
        sa.Column('failed_attempts', sa.Integer(), nullable=False),
        sa.Column('locked_until', service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('setup_completed_at', service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('last_sign_in_at', service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('disabled_at', service.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_operators')),
        sa.UniqueConstraint('email', name=op.f('uq_operators_email')),
    )
    op.create_table(
        'operator_sessions',
        sa.Column('id', sa.String(64), nullable=False),
        sa.Column('operator_id', sa.Integer(), nullable=False),
        sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('ended_at', service.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['operator_id'], ['operators.id'],
                                name=op.f('fk_operator_sessions_operator_id_operators')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_operator_sessions')),
    )
    op.create_index(op.f('ix_operator_sessions_operator_id'), 'operator_sessions', ['operator_id'])
    op.create_table(
        'operator_setup_tokens',
        sa.Column('token_hash', sa.String(64), nullable=False),
        sa.Column('operator_id', sa.Integer(), nullable=False),
        sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('expires_at', service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('used_at', service.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['operator_id'], ['operators.id'],
                                name=op.f('fk_operator_setup_tokens_operator_id_operators')),
        sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_operator_setup_tokens')),
    )
    op.create_index(op.f('ix_operator_setup_tokens_operator_id'), 'operator_setup_tokens', ['operator_id'])


def downgrade() -> None:
    op.drop_index(op.f('ix_operator_setup_tokens_operator_id'), table_name='operator_setup_tokens')
    op.drop_table('operator_setup_tokens')
    op.drop_index(op.f('ix_operator_sessions_operator_id'), table_name='operator_sessions')
    op.drop_table('operator_sessions')
    op.drop_table('operators')
