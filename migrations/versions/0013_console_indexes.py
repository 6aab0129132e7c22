"""console indexes: open requests by due date and by state and type (partial), requests by received date, and
the due-date index covering the overview's columns (PostgreSQL INCLUDE)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-28 13:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

# dsar.models.OPEN_ONLY as it was written here: the final states are not open.
OPEN_ONLY = sa.text("status NOT IN ('cancelled', 'completed', 'failed', 'partially_completed', 'rejected')")


def upgrade() -> None:
    op.create_index('ix_dsar_requests_open_due', 'dsar_requests', ['due_at', 'id'],
                    postgresql_where=OPEN_ONLY, sqlite_where=OPEN_ONLY)
    op.create_index('ix_dsar_requests_open_state', 'dsar_requests', ['status', 'type', 'due_at'],
                    postgresql_where=OPEN_ONLY, sqlite_where=OPEN_ONLY)
    op.create_index('ix_dsar_requests_received', 'dsar_requests', ['received_at', 'id'])
    op.drop_index('ix_dsar_requests_due_at', table_name='dsar_requests')
    op.create_index('ix_dsar_requests_due_at', 'dsar_requests', ['due_at'],
                    postgresql_include=['status', 'type', 'received_at', 'closed_at'])


def downgrade() -> None:
    op.drop_index('ix_dsar_requests_due_at', table_name='dsar_requests')
    op.create_index('ix_dsar_requests_due_at', 'dsar_requests', ['due_at'])
    op.drop_index('ix_dsar_requests_received', table_name='dsar_requests')
    op.drop_index('ix_dsar_requests_open_state', table_name='dsar_requests')
    op.drop_index('ix_dsar_requests_open_due', table_name='dsar_requests')
