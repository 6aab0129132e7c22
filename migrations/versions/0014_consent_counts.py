"""consent counts: events per policy, day and purpose folded from the ledger, and the watermark of the fold

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-28 13:45:00.000000
"""

import sqlalchemy as sa
from alembic import op

import service.db

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'consent_counts',
        sa.Column('policy_id', sa.Integer(), sa.ForeignKey('policies.id'), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('purpose', sa.String(length=100), nullable=False),
        sa.Column('granted', sa.Integer(), nullable=False),
        sa.Column('denied', sa.Integer(), nullable=False),
        sa.Column('withdrawn', sa.Integer(), nullable=False),
        sa.Column('events', sa.Integer(), nullable=False),
        sa.Column('gpc', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('policy_id', 'day', 'purpose'),
    )
    marks = op.create_table(
        'consent_count_marks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('last_id', sa.String(length=36), nullable=True),
        sa.Column('folded_at', service.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.bulk_insert(marks, [{'id': 1, 'last_id': None, 'folded_at': None}])


def downgrade() -> None:
    op.drop_table('consent_count_marks')
    op.drop_table('consent_counts')
