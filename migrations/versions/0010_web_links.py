"""web links: single-use tokens into the privacy centre (minted by apps, sent in email), stored hashed

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28 12:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

import service.db

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'web_links',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(64), nullable=False),
        sa.Column('kind', sa.String(16), nullable=False),
        sa.Column('app_id', sa.Integer(), nullable=False),
        sa.Column('subject', sa.LargeBinary(), nullable=True),
        sa.Column('request_id', sa.String(36), nullable=True),
        sa.Column('locale', sa.String(16), nullable=True),
        sa.Column('return_url', sa.String(2000), nullable=True),
        sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('expires_at', service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('used_at', service.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_web_links_app_id_apps')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_web_links')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_web_links_token_hash')),
    )
    op.create_index(op.f('ix_web_links_app_id'), 'web_links', ['app_id'])


def downgrade() -> None:
    op.drop_index(op.f('ix_web_links_app_id'), table_name='web_links')
    op.drop_table('web_links')
