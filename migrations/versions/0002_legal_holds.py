"""legal holds

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 06:38:44.782663
"""

from alembic import op
import sqlalchemy as sa
import service.db


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('legal_holds',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('app_id', sa.Integer(), nullable=False),
    sa.Column('subject_keys', sa.JSON(), nullable=True),
    sa.Column('subject', sa.LargeBinary(), nullable=True),
    sa.Column('store', sa.String(length=100), nullable=True),
    sa.Column('category', sa.String(length=100), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('until', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('released_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('released_by', sa.String(length=100), nullable=True),
    sa.Column('release_reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_legal_holds_app_id_apps')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_legal_holds'))
    )
    with op.batch_alter_table('legal_holds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_legal_holds_app_id'), ['app_id'], unique=False)

def downgrade() -> None:
    with op.batch_alter_table('legal_holds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_legal_holds_app_id'))

    op.drop_table('legal_holds')
