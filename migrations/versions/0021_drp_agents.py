"""dsar: Data Rights Protocol agents, their tokens and requests, status callbacks; purposes marked as sale or sharing

Revision ID: 0021
Revises: 0020
"""

import sqlalchemy as sa
from alembic import op

import service.db

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('drp_seen_messages',
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('expires_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('digest', name=op.f('pk_drp_seen_messages'))
    )
    with op.batch_alter_table('drp_seen_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_drp_seen_messages_expires_at'), ['expires_at'], unique=False)

    op.create_table('drp_agents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('app_id', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.String(length=100), nullable=False),
    sa.Column('business_id', sa.String(length=100), nullable=False),
    sa.Column('verify_key', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('trust_verification', sa.Boolean(), nullable=False),
    sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_drp_agents_app_id_apps')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_drp_agents')),
    sa.UniqueConstraint('app_id', 'agent_id', name=op.f('uq_drp_agents_app_id'))
    )
    with op.batch_alter_table('drp_agents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_drp_agents_agent_id'), ['agent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_drp_agents_app_id'), ['app_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_drp_agents_business_id'), ['business_id'], unique=False)

    op.create_table('drp_requests',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('app_id', sa.Integer(), nullable=False),
    sa.Column('agent_pk', sa.Integer(), nullable=False),
    sa.Column('dsar_request_id', sa.String(length=36), nullable=True),
    sa.Column('agent_request_id', sa.String(length=200), nullable=True),
    sa.Column('exercise', sa.String(length=30), nullable=False),
    sa.Column('regime', sa.String(length=20), nullable=True),
    sa.Column('status_callback', sa.String(length=2000), nullable=True),
    sa.Column('received_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=True),
    sa.Column('reason', sa.String(length=40), nullable=True),
    sa.Column('details', sa.Text(), nullable=True),
    sa.Column('verify_until', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('dirty', sa.Boolean(), nullable=False),
    sa.Column('verification_link', sa.LargeBinary(), nullable=True),
    sa.Column('results_token', sa.LargeBinary(), nullable=True),
    sa.Column('opt_in_subject', sa.LargeBinary(), nullable=True),
    sa.Column('revoked_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoke_reason', sa.LargeBinary(), nullable=True),
    sa.Column('last', sa.JSON(), nullable=True),
    sa.Column('current', sa.String(length=20), nullable=True),
    sa.ForeignKeyConstraint(['agent_pk'], ['drp_agents.id'], name=op.f('fk_drp_requests_agent_pk_drp_agents')),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_drp_requests_app_id_apps')),
    sa.ForeignKeyConstraint(['dsar_request_id'], ['dsar_requests.id'], name=op.f('fk_drp_requests_dsar_request_id_dsar_requests')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_drp_requests')),
    sa.UniqueConstraint('dsar_request_id', name=op.f('uq_drp_requests_dsar_request_id'))
    )
    with op.batch_alter_table('drp_requests', schema=None) as batch_op:
        batch_op.create_index('ix_drp_requests_agent_ref', ['agent_pk', 'agent_request_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_drp_requests_app_id'), ['app_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_drp_requests_current'), ['current'], unique=False)
        batch_op.create_index(batch_op.f('ix_drp_requests_dirty'), ['dirty'], unique=False)

    op.create_table('drp_tokens',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('agent_pk', sa.Integer(), nullable=False),
    sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['agent_pk'], ['drp_agents.id'], name=op.f('fk_drp_tokens_agent_pk_drp_agents')),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_drp_tokens'))
    )
    with op.batch_alter_table('drp_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_drp_tokens_agent_pk'), ['agent_pk'], unique=False)

    op.create_table('drp_callbacks',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('drp_request_id', sa.String(length=36), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('lease_until', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['drp_request_id'], ['drp_requests.id'], name=op.f('fk_drp_callbacks_drp_request_id_drp_requests')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_drp_callbacks'))
    )
    with op.batch_alter_table('drp_callbacks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_drp_callbacks_drp_request_id'), ['drp_request_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_drp_callbacks_state'), ['state'], unique=False)

    with op.batch_alter_table('purposes', schema=None) as batch_op:
        # Existing purposes are not a sale or sharing until the privacy team says so.
        batch_op.add_column(sa.Column('sale_or_sharing', sa.Boolean(), nullable=False, server_default=sa.false()))



def downgrade() -> None:
    with op.batch_alter_table('purposes', schema=None) as batch_op:
        batch_op.drop_column('sale_or_sharing')

    with op.batch_alter_table('drp_callbacks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_drp_callbacks_state'))
        batch_op.drop_index(batch_op.f('ix_drp_callbacks_drp_request_id'))

    op.drop_table('drp_callbacks')
    with op.batch_alter_table('drp_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_drp_tokens_agent_pk'))

    op.drop_table('drp_tokens')
    with op.batch_alter_table('drp_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_drp_requests_dirty'))
        batch_op.drop_index(batch_op.f('ix_drp_requests_current'))
        batch_op.drop_index(batch_op.f('ix_drp_requests_app_id'))
        batch_op.drop_index('ix_drp_requests_agent_ref')

    op.drop_table('drp_requests')
    with op.batch_alter_table('drp_agents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_drp_agents_business_id'))
        batch_op.drop_index(batch_op.f('ix_drp_agents_app_id'))
        batch_op.drop_index(batch_op.f('ix_drp_agents_agent_id'))

    op.drop_table('drp_agents')
    with op.batch_alter_table('drp_seen_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_drp_seen_messages_expires_at'))

    op.drop_table('drp_seen_messages')
