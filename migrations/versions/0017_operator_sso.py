"""operators signing in through OpenID Connect: the provider's issuer and subject

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-28 15:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('operators') as batch:
        batch.add_column(sa.Column('sso_subject', sa.String(length=300), nullable=True))
        batch.create_unique_constraint('uq_operators_sso_subject', ['sso_subject'])


def downgrade() -> None:
    with op.batch_alter_table('operators') as batch:
        batch.drop_constraint('uq_operators_sso_subject', type_='unique')
        batch.drop_column('sso_subject')
