"""governance: the processor register and its reviews, activities' people-kept fields, ROPA snapshots, assessments

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-28 15:12:32.598632
"""

import sqlalchemy as sa
from alembic import op

import service.db


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('governance_activities',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=320), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('controller', sa.String(length=300), nullable=True),
    sa.Column('joint_controller', sa.String(length=300), nullable=True),
    sa.Column('security_measures', sa.Text(), nullable=True),
    sa.Column('updated_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=100), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_governance_activities')),
    sa.UniqueConstraint('key', name=op.f('uq_governance_activities_key'))
    )
    op.create_table('governance_processors',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=30), nullable=False),
    sa.Column('countries', sa.JSON(), nullable=False),
    sa.Column('categories', sa.JSON(), nullable=False),
    sa.Column('purposes', sa.JSON(), nullable=False),
    sa.Column('dpa_date', sa.Date(), nullable=True),
    sa.Column('contact', sa.String(length=300), nullable=True),
    sa.Column('erasure_webhook', sa.String(length=2000), nullable=True),
    sa.Column('erasure_secret', sa.LargeBinary(), nullable=True),
    sa.Column('erasure_email', sa.String(length=320), nullable=True),
    sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_governance_processors')),
    sa.UniqueConstraint('key', name=op.f('uq_governance_processors_key'))
    )
    op.create_table('governance_ropa_snapshots',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('activities', sa.Integer(), nullable=False),
    sa.Column('token', sa.Text(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_governance_ropa_snapshots'))
    )
    with op.batch_alter_table('governance_ropa_snapshots', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_governance_ropa_snapshots_created_at'), ['created_at'], unique=False)

    op.create_table('governance_assessments',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('app_id', sa.Integer(), nullable=False),
    sa.Column('activity', sa.String(length=320), nullable=True),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('answers', sa.JSON(), nullable=False),
    sa.Column('risks', sa.JSON(), nullable=False),
    sa.Column('mitigations', sa.JSON(), nullable=False),
    sa.Column('facts', sa.JSON(), nullable=True),
    sa.Column('facts_digest', sa.String(length=64), nullable=True),
    sa.Column('drift', sa.JSON(), nullable=True),
    sa.Column('reviewer_comment', sa.Text(), nullable=True),
    sa.Column('approved_by', sa.String(length=200), nullable=True),
    sa.Column('approved_at', service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('review_due', sa.Date(), nullable=True),
    sa.Column('token', sa.Text(), nullable=True),
    sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_governance_assessments_app_id_apps')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_governance_assessments'))
    )
    with op.batch_alter_table('governance_assessments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_governance_assessments_app_id'), ['app_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_governance_assessments_state'), ['state'], unique=False)

    op.create_table('governance_processor_reviews',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('processor_id', sa.Integer(), nullable=False),
    sa.Column('reviewed_on', sa.Date(), nullable=False),
    sa.Column('result', sa.String(length=30), nullable=False),
    sa.Column('reviewer', sa.String(length=200), nullable=False),
    sa.Column('next_due', sa.Date(), nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('created_at', service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['processor_id'], ['governance_processors.id'], name=op.f('fk_governance_processor_reviews_processor_id_governance_processors')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_governance_processor_reviews'))
    )
    with op.batch_alter_table('governance_processor_reviews', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_governance_processor_reviews_processor_id'), ['processor_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('governance_processor_reviews', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_governance_processor_reviews_processor_id'))

    op.drop_table('governance_processor_reviews')
    with op.batch_alter_table('governance_assessments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_governance_assessments_state'))
        batch_op.drop_index(batch_op.f('ix_governance_assessments_app_id'))

    op.drop_table('governance_assessments')
    with op.batch_alter_table('governance_ropa_snapshots', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_governance_ropa_snapshots_created_at'))

    op.drop_table('governance_ropa_snapshots')
    op.drop_table('governance_processors')
    op.drop_table('governance_activities')
