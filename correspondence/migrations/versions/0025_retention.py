"""retention, legal holds, subject access and erasure

Revision ID: 0025_retention
Revises: 0024_backups
Create Date: 2026-12-03 19:17:20.674201
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0025_retention'
down_revision: str | None = '0024_backups'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('erasures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('constituent_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('counts', sa.JSON(), nullable=False),
    sa.Column('erased_by_id', sa.Integer(), nullable=True),
    sa.Column('erased_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['constituent_id'], ['constituents.id'], name=op.f('fk_erasures_constituent_id_constituents')),
    sa.ForeignKeyConstraint(['erased_by_id'], ['staffers.id'], name=op.f('fk_erasures_erased_by_id_staffers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_erasures')),
    sa.UniqueConstraint('constituent_id', name=op.f('uq_erasures_constituent_id'))
    )
    op.create_table('legal_holds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('object_type', sa.String(length=20), nullable=False),
    sa.Column('object_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('placed_by_id', sa.Integer(), nullable=True),
    sa.Column('placed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('released_by_id', sa.Integer(), nullable=True),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('release_reason', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['placed_by_id'], ['staffers.id'], name=op.f('fk_legal_holds_placed_by_id_staffers')),
    sa.ForeignKeyConstraint(['released_by_id'], ['staffers.id'], name=op.f('fk_legal_holds_released_by_id_staffers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_legal_holds'))
    )
    with op.batch_alter_table('legal_holds', schema=None) as batch_op:
        batch_op.create_index('ix_legal_holds_object', ['object_type', 'object_id', 'released_at'], unique=False)

    op.create_table('retention_rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('years', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['updated_by_id'], ['staffers.id'], name=op.f('fk_retention_rules_updated_by_id_staffers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_retention_rules')),
    sa.UniqueConstraint('kind', name=op.f('uq_retention_rules_kind'))
    )
    op.create_table('retention_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dry_run', sa.Boolean(), nullable=False),
    sa.Column('state', sa.Enum('uploaded', 'queued', 'running', 'done', 'failed', name='run_state', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['staffers.id'], name=op.f('fk_retention_runs_created_by_id_staffers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_retention_runs'))
    )
    op.create_table('subject_access_exports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('constituent_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.Enum('uploaded', 'queued', 'running', 'done', 'failed', name='run_state', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('size', sa.Integer(), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['constituent_id'], ['constituents.id'], name=op.f('fk_subject_access_exports_constituent_id_constituents')),
    sa.ForeignKeyConstraint(['created_by_id'], ['staffers.id'], name=op.f('fk_subject_access_exports_created_by_id_staffers')),
    sa.ForeignKeyConstraint(['sha256'], ['blobs.sha256'], name=op.f('fk_subject_access_exports_sha256_blobs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subject_access_exports'))
    )
    with op.batch_alter_table('subject_access_exports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subject_access_exports_constituent_id'), ['constituent_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('subject_access_exports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subject_access_exports_constituent_id'))

    op.drop_table('subject_access_exports')
    op.drop_table('retention_runs')
    op.drop_table('retention_rules')
    with op.batch_alter_table('legal_holds', schema=None) as batch_op:
        batch_op.drop_index('ix_legal_holds_object')

    op.drop_table('legal_holds')
    op.drop_table('erasures')
