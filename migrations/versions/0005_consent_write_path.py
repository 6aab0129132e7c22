"""consent write path: drop the (policy_id, subject, seq) index; receipts stored out of line uncompressed

The unique (subject, seq) index already finds a subject's latest event per policy (a subject has few events), and
each extra index on a pseudonym is one more random leaf written per consent. A receipt is a signed JWS, mostly
base64, which PostgreSQL's compression shrinks by about a tenth at a noticeable share of the insert's CPU.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 08:30:00.000000
"""

from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

INDEX = 'ix_consent_events_policy_subject_seq'


def _postgresql() -> bool:
    return op.get_bind().dialect.name == 'postgresql'


def upgrade() -> None:
    if _postgresql():
        # CONCURRENTLY: consent writers keep going while the index goes; it cannot run inside a transaction.
        with op.get_context().autocommit_block():
            op.execute(f'DROP INDEX CONCURRENTLY IF EXISTS {INDEX}')
        # Existing rows keep their compressed receipts; new ones are stored as they are.
        op.execute('ALTER TABLE consent_events ALTER COLUMN receipt SET STORAGE EXTERNAL')
    else:
        with op.batch_alter_table('consent_events', schema=None) as batch_op:
            batch_op.drop_index(INDEX)


def downgrade() -> None:
    if _postgresql():
        op.execute('ALTER TABLE consent_events ALTER COLUMN receipt SET STORAGE EXTENDED')
        with op.get_context().autocommit_block():
            op.execute(f'CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} ON consent_events (policy_id, subject, seq)')
    else:
        with op.batch_alter_table('consent_events', schema=None) as batch_op:
            batch_op.create_index(INDEX, ['policy_id', 'subject', 'seq'], unique=False)
