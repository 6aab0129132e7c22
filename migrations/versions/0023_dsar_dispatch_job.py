"""dsar: the outbox names the RQ job each row went into, as one job now carries a request's tasks on `dsar`, and
marks the rows the reconciler sends again, which get a job of their own

Revision ID: 0023
Revises: 0022
"""

import sqlalchemy as sa
from alembic import op

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('dsar_dispatch', schema=None) as batch_op:
        batch_op.add_column(sa.Column('job', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('alone', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('dsar_dispatch', schema=None) as batch_op:
        batch_op.drop_column('alone')
        batch_op.drop_column('job')
