"""dsar and shared: resends of verification codes counted per request; idempotency keys of submissions

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 09:15:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('dsar_requests', sa.Column('code_resent_at', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('dsar_requests') as batch:
        batch.drop_column('code_resent_at')
