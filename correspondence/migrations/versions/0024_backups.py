"""backups: backup records and admin exports

Revision ID: 0024_backups
Revises: 0023_subscriptions
Create Date: 2026-12-03 19:16:03.291809
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0024_backups'
down_revision: str | None = '0023_subscriptions'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('backup_records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('made_by', sa.String(length=20), nullable=False),
    sa.Column('database_kind', sa.String(length=20), nullable=False),
    sa.Column('snapshot', sa.String(length=100), nullable=False),
    sa.Column('destination', sa.String(length=500), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('blob_files_copied', sa.Integer(), nullable=False),
    sa.Column('seconds', sa.Float(), nullable=False),
    sa.Column('error', sa.String(length=1000), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_backup_records'))
    )
    with op.batch_alter_table('backup_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_backup_records_ok'), ['ok'], unique=False)
    op.create_table('export_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('state', sa.Enum('uploaded', 'queued', 'running', 'done', 'failed', name='run_state', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('progress', sa.Integer(), nullable=False),
    sa.Column('summary', sa.JSON(), nullable=True),
    sa.Column('file_name', sa.String(length=200), nullable=True),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['staffers.id'], name=op.f('fk_export_runs_created_by_id_staffers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_export_runs'))
    )


def downgrade() -> None:
    op.drop_table('export_runs')
    with op.batch_alter_table('backup_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_backup_records_ok'))
    op.drop_table('backup_records')
