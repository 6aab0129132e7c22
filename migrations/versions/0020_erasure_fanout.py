"""governance: erasure notices to processors (one per completed erasure request and processor)

Revision ID: 0020
Revises: 0019
"""

import sqlalchemy as sa
from alembic import op

import service.db

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('governance_erasure_notices',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('request_id', sa.String(length=36), nullable=False),
    sa.Column('app_id', sa.Integer(), nullable=False),
    sa.Column('processor_key', sa.String(length=100), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('categories', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.Column('ack_token_sha256', sa.String(length=64), nullable=True),
    sa.Column('mail_id', sa.String(length=36), nullable=True),
    sa.Column('next_attempt_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('lease_until', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_governance_erasure_notices_app_id_apps')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_governance_erasure_notices')),
    sa.UniqueConstraint('ack_token_sha256', name=op.f('uq_governance_erasure_notices_ack_token_sha256')),
    sa.UniqueConstraint('request_id', 'processor_key',
                        name=op.f('uq_governance_erasure_notices_request_id'))
    )
    with op.batch_alter_table('governance_erasure_notices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_governance_erasure_notices_app_id'), ['app_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_governance_erasure_notices_request_id'), ['request_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_governance_erasure_notices_state'), ['state'], unique=False)


def downgrade() -> None:
    op.drop_table('governance_erasure_notices')
