"""franking: election dates (the blackout calendar) and mass-mail approvals (advisory opinions)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 17:35:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0020'
down_revision: str | None = '0019'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('elections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('primary', 'general', 'special', 'runoff', name='election_kind', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('election_date', sa.Date(), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['staffers.id'], name=op.f('fk_elections_created_by_id_staffers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_elections')),
    sa.UniqueConstraint('kind', 'election_date', name='uq_elections_kind_date')
    )
    with op.batch_alter_table('elections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_elections_election_date'), ['election_date'], unique=False)
    op.create_table('mass_mail_approvals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('letter_id', sa.Integer(), nullable=False),
    sa.Column('year_start', sa.Date(), nullable=False),
    sa.Column('opinion_number', sa.String(length=100), nullable=False),
    sa.Column('opinion_date', sa.Date(), nullable=False),
    sa.Column('recorded_by_id', sa.Integer(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['letter_id'], ['form_letters.id'], name=op.f('fk_mass_mail_approvals_letter_id_form_letters')),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['staffers.id'], name=op.f('fk_mass_mail_approvals_recorded_by_id_staffers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mass_mail_approvals'))
    )
    with op.batch_alter_table('mass_mail_approvals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mass_mail_approvals_letter_id'), ['letter_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('mass_mail_approvals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mass_mail_approvals_letter_id'))
    op.drop_table('mass_mail_approvals')
    with op.batch_alter_table('elections', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_elections_election_date'))
    op.drop_table('elections')
