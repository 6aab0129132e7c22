"""incidents: the affected people's keys unique on (key, run) instead of (run, key), so an assessment's look-ups
of a batch's keys probe the index by key rather than scan the run's keys

Revision ID: 0022
Revises: 0021
"""

from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('incident_subject_keys', schema=None) as batch_op:
        batch_op.drop_constraint('uq_incident_subject_keys_run_id', type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_incident_subject_keys_key'), ['key', 'run_id'])


def downgrade() -> None:
    with op.batch_alter_table('incident_subject_keys', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_incident_subject_keys_key'), type_='unique')
        batch_op.create_unique_constraint('uq_incident_subject_keys_run_id', ['run_id', 'key'])
