"""incidents: the register and its versions, notification records, assessment runs with the encrypted affected-subject
list, notice campaigns and their deliveries

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-28 15:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

import service.db

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

# Children first when dropping.
TABLES = ('incident_deliveries', 'incident_campaigns', 'incident_subject_keys', 'incident_subjects',
          'incident_assessment_steps', 'incident_assessments', 'incident_notifications', 'incident_versions',
          'incidents')


def upgrade() -> None:
    op.create_table('incidents',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('app_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('severity', sa.String(length=20), nullable=True),
    sa.Column('discovered_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('occurred_from', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('occurred_until', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('scope', sa.JSON(), nullable=False),
    sa.Column('jurisdictions', sa.JSON(), nullable=False),
    sa.Column('risk', sa.String(length=20), nullable=True),
    sa.Column('risk_reasoning', sa.Text(), nullable=True),
    sa.Column('consequences', sa.Text(), nullable=True),
    sa.Column('root_cause', sa.Text(), nullable=True),
    sa.Column('measures', sa.Text(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('updated_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('assessed_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('contained_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('subjects_destroy_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('record', sa.Text(), nullable=True),
    sa.Column('record_sha256', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_incidents_app_id_apps')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incidents'))
    )
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incidents_app_id'), ['app_id'], unique=False)
        batch_op.create_index('ix_incidents_app_state', ['app_id', 'state'], unique=False)
        batch_op.create_index(batch_op.f('ix_incidents_subjects_destroy_at'), ['subjects_destroy_at'], unique=False)

    op.create_table('incident_assessments',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('incident_id', sa.String(length=36), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('since', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('until', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('requested_by', sa.String(length=100), nullable=False),
    sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('lease_token', sa.String(length=32), nullable=True),
    sa.Column('lease_expires_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('distinct_subjects', sa.Integer(), nullable=True),
    sa.Column('with_contact', sa.Integer(), nullable=True),
    sa.Column('subjects_destroyed_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_assessments_incident_id_incidents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_assessments'))
    )
    with op.batch_alter_table('incident_assessments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_assessments_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_incident_assessments_state'), ['state'], unique=False)

    op.create_table('incident_notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.String(length=36), nullable=False),
    sa.Column('jurisdiction', sa.String(length=40), nullable=False),
    sa.Column('obligation', sa.String(length=20), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reference', sa.String(length=200), nullable=True),
    sa.Column('notified_by', sa.String(length=200), nullable=True),
    sa.Column('reasoning', sa.Text(), nullable=True),
    sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_notifications_incident_id_incidents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_notifications'))
    )
    with op.batch_alter_table('incident_notifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_notifications_incident_id'), ['incident_id'], unique=False)

    op.create_table('incident_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.String(length=36), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('facts', sa.JSON(), nullable=False),
    sa.Column('changed', sa.JSON(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_versions_incident_id_incidents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_versions')),
    sa.UniqueConstraint('incident_id', 'version', name=op.f('uq_incident_versions_incident_id'))
    )
    with op.batch_alter_table('incident_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_versions_incident_id'), ['incident_id'], unique=False)

    op.create_table('incident_assessment_steps',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.String(length=36), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('store', sa.String(length=100), nullable=False),
    sa.Column('category', sa.String(length=100), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('subjects', sa.Integer(), nullable=False),
    sa.Column('batches', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['incident_assessments.id'], name=op.f('fk_incident_assessment_steps_run_id_incident_assessments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_assessment_steps')),
    sa.UniqueConstraint('run_id', 'position', name=op.f('uq_incident_assessment_steps_run_id'))
    )
    with op.batch_alter_table('incident_assessment_steps', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_assessment_steps_run_id'), ['run_id'], unique=False)

    op.create_table('incident_campaigns',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('incident_id', sa.String(length=36), nullable=False),
    sa.Column('run_id', sa.String(length=36), nullable=False),
    sa.Column('dry_run', sa.Boolean(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('messages', sa.JSON(), nullable=False),
    sa.Column('per_minute', sa.Integer(), nullable=True),
    sa.Column('requested_by', sa.String(length=100), nullable=False),
    sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('lease_token', sa.String(length=32), nullable=True),
    sa.Column('lease_expires_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('counts', sa.JSON(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_campaigns_incident_id_incidents')),
    sa.ForeignKeyConstraint(['run_id'], ['incident_assessments.id'], name=op.f('fk_incident_campaigns_run_id_incident_assessments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_campaigns'))
    )
    with op.batch_alter_table('incident_campaigns', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_campaigns_incident_id'), ['incident_id'], unique=False)

    op.create_table('incident_subjects',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.String(length=36), nullable=False),
    sa.Column('identity', sa.LargeBinary(), nullable=False),
    sa.Column('has_contact', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['incident_assessments.id'], name=op.f('fk_incident_subjects_run_id_incident_assessments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_subjects'))
    )
    with op.batch_alter_table('incident_subjects', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_subjects_run_id'), ['run_id'], unique=False)

    op.create_table('incident_deliveries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('campaign_id', sa.String(length=36), nullable=False),
    sa.Column('subject_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('mail_id', sa.String(length=36), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('updated_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['incident_campaigns.id'], name=op.f('fk_incident_deliveries_campaign_id_incident_campaigns')),
    sa.ForeignKeyConstraint(['subject_id'], ['incident_subjects.id'], name=op.f('fk_incident_deliveries_subject_id_incident_subjects')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_deliveries')),
    sa.UniqueConstraint('campaign_id', 'subject_id', name=op.f('uq_incident_deliveries_campaign_id'))
    )
    with op.batch_alter_table('incident_deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_deliveries_campaign_id'), ['campaign_id'], unique=False)

    op.create_table('incident_subject_keys',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.String(length=36), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('subject_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['incident_assessments.id'], name=op.f('fk_incident_subject_keys_run_id_incident_assessments')),
    sa.ForeignKeyConstraint(['subject_id'], ['incident_subjects.id'], name=op.f('fk_incident_subject_keys_subject_id_incident_subjects')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_subject_keys')),
    sa.UniqueConstraint('run_id', 'key', name=op.f('uq_incident_subject_keys_run_id'))
    )
    with op.batch_alter_table('incident_subject_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_subject_keys_subject_id'), ['subject_id'], unique=False)


def downgrade() -> None:
    for table in TABLES:
        op.drop_table(table)
