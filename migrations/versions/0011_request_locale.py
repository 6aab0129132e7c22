"""request locale: the language every email about a rights request is written in

Requests made before this revision keep NULL and get MAIL_DEFAULT_LOCALE, as their earlier emails did.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28 13:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('dsar_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locale', sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('dsar_requests', schema=None) as batch_op:
        batch_op.drop_column('locale')
