"""office closing: the closing record, the closing auto-reply list, and the case's transfer consent

Revision ID: 0022_office_closing
Revises: 0021_api_tokens
Create Date: 2026-12-03 19:30:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0022_office_closing'
down_revision: str | None = '0021_api_tokens'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('office_closings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('successor_name', sa.String(length=200), nullable=False),
    sa.Column('successor_contact', sa.Text(), nullable=False),
    sa.Column('intake_stopped_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('intake_stopped_by_id', sa.Integer(), nullable=True),
    sa.Column('working_on', sa.String(length=20), nullable=True),
    sa.Column('last_error', sa.String(length=1000), nullable=True),
    sa.Column('final_export_path', sa.String(length=1000), nullable=True),
    sa.Column('final_export_manifest_sha256', sa.String(length=64), nullable=True),
    sa.Column('final_export_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('final_export_by_id', sa.Integer(), nullable=True),
    sa.Column('final_export_verified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('handover_path', sa.String(length=1000), nullable=True),
    sa.Column('handover_manifest_sha256', sa.String(length=64), nullable=True),
    sa.Column('handover_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('handover_by_id', sa.Integer(), nullable=True),
    sa.Column('handover_counts', sa.JSON(), nullable=True),
    sa.Column('purged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('purged_by_id', sa.Integer(), nullable=True),
    sa.Column('purge_counts', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['final_export_by_id'], ['staffers.id'], name=op.f('fk_office_closings_final_export_by_id_staffers')),
    sa.ForeignKeyConstraint(['handover_by_id'], ['staffers.id'], name=op.f('fk_office_closings_handover_by_id_staffers')),
    sa.ForeignKeyConstraint(['intake_stopped_by_id'], ['staffers.id'], name=op.f('fk_office_closings_intake_stopped_by_id_staffers')),
    sa.ForeignKeyConstraint(['purged_by_id'], ['staffers.id'], name=op.f('fk_office_closings_purged_by_id_staffers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_office_closings'))
    )
    op.create_table('closing_auto_replies',
    sa.Column('address_sha256', sa.String(length=64), nullable=False),
    sa.Column('response_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('address_sha256', name=op.f('pk_closing_auto_replies'))
    )
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('transfer_consent_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('transfer_consent_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_cases_transfer_consent_by_id_staffers'), 'staffers',
                                    ['transfer_consent_by_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_cases_transfer_consent_by_id_staffers'), type_='foreignkey')
        batch_op.drop_column('transfer_consent_by_id')
        batch_op.drop_column('transfer_consent_at')
    op.drop_table('closing_auto_replies')
    op.drop_table('office_closings')
