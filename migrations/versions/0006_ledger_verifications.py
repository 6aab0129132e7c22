"""consent: ledger_verifications, the record of each ledger check and its signed checkpoint

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 09:15:00.000000
"""

from alembic import op
import sqlalchemy as sa
import service.db


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ledger_verifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('started_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('mode', sa.String(length=20), nullable=False),
    sa.Column('trigger', sa.String(length=20), nullable=False),
    sa.Column('events_checked', sa.Integer(), nullable=False),
    sa.Column('chains_checked', sa.Integer(), nullable=False),
    sa.Column('events_covered', sa.Integer(), nullable=True),
    sa.Column('breaks', sa.Integer(), nullable=False),
    sa.Column('first_break', sa.String(length=100), nullable=True),
    sa.Column('first_break_problem', sa.String(length=300), nullable=True),
    sa.Column('first_break_app_id', sa.Integer(), nullable=True),
    sa.Column('base_id', sa.Integer(), nullable=True),
    sa.Column('checkpoint', sa.Text(), nullable=True),
    sa.Column('error', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_verifications'))
    )


def downgrade() -> None:
    op.drop_table('ledger_verifications')
