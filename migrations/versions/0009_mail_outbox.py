"""mail outbox: the shared, delivered outbox (encrypted rows with delivery state) replacing `notifications`

The old `notifications` table was never delivered by anything; its rows are kept untouched (read-only, for an
operator to inspect) and new messages go to `mail_outbox`. They are not migrated: their bodies were plain text
without a subject or HTML part, and sending codes days old would only confuse.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 11:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

import service.db

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'mail_outbox',
        sa.Column('id', sa.String(36), nullable=False),
        sa.Column('app_id', sa.Integer(), nullable=True),
        sa.Column('ref', sa.String(64), nullable=True),
        sa.Column('kind', sa.String(40), nullable=False),
        sa.Column('locale', sa.String(16), nullable=False),
        sa.Column('recipient', sa.LargeBinary(), nullable=False),
        sa.Column('subject', sa.LargeBinary(), nullable=False),
        sa.Column('text_body', sa.LargeBinary(), nullable=False),
        sa.Column('html_body', sa.LargeBinary(), nullable=False),
        sa.Column('state', sa.String(16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('lease_until', service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('message_id', sa.String(255), nullable=False),
        sa.Column('sent_at', service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_mail_outbox')),
    )
    op.create_index('ix_mail_outbox_due', 'mail_outbox', ['state', 'next_attempt_at'])
    op.create_index(op.f('ix_mail_outbox_ref'), 'mail_outbox', ['ref'])


def downgrade() -> None:
    op.drop_index(op.f('ix_mail_outbox_ref'), table_name='mail_outbox')
    op.drop_index('ix_mail_outbox_due', table_name='mail_outbox')
    op.drop_table('mail_outbox')
