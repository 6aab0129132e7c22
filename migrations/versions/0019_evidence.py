"""evidence: the audit evidence pack's export jobs

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-28 16:19:00
"""

import sqlalchemy as sa
from alembic import op

import service.db


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('evidence_exports',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('period_start', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('period_end', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('requested_by', sa.String(length=100), nullable=False),
    sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('lease_token', sa.String(length=32), nullable=True),
    sa.Column('lease_expires_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('path', sa.String(length=500), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('summary', sa.JSON(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evidence_exports'))
    )
    op.create_index(op.f('ix_evidence_exports_state'), 'evidence_exports', ['state'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_evidence_exports_state'), table_name='evidence_exports')
    op.drop_table('evidence_exports')
