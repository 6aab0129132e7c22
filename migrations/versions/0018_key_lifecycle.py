"""API keys' lifecycle: an optional expiry, the last use (written at most once a minute) and the key a rotation
replaced

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-28 15:10:00.000000
"""

import sqlalchemy as sa
from alembic import op

import service.db

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('api_keys') as batch:
        batch.add_column(sa.Column('expires_at', service.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('last_used_at', service.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('replaces', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('api_keys') as batch:
        batch.drop_column('replaces')
        batch.drop_column('last_used_at')
        batch.drop_column('expires_at')
