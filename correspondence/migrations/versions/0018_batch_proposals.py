"""batch proposals (letters that nearly match a batch), addition kinds, suggested batch stance

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 16:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0018'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STANCES = ('support', 'oppose', 'neutral')


def upgrade() -> None:
    op.create_table('batch_proposals',
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('stage', sa.String(length=20), nullable=False),
    sa.Column('status', sa.Enum('open', 'added', 'rejected', name='batch_proposal_status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['batches.id'], name=op.f('fk_batch_proposals_batch_id_batches'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['decided_by_id'], ['staffers.id'], name=op.f('fk_batch_proposals_decided_by_id_staffers')),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_batch_proposals_message_id_messages'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('batch_id', 'message_id', name=op.f('pk_batch_proposals'))
    )
    with op.batch_alter_table('batch_proposals', schema=None) as batch_op:
        batch_op.create_index('ix_batch_proposals_batch_status_score', ['batch_id', 'status', 'score'], unique=False)
        batch_op.create_index('ix_batch_proposals_message', ['message_id'], unique=False)
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('suggested_stance', sa.Enum(*STANCES, name='batch_suggested_stance', native_enum=False, create_constraint=True, length=20), nullable=True))
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('batch_addition_kinds', sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('batch_addition_kinds')
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.drop_constraint('batch_suggested_stance', type_='check')
        batch_op.drop_column('suggested_stance')
    with op.batch_alter_table('batch_proposals', schema=None) as batch_op:
        batch_op.drop_index('ix_batch_proposals_message')
        batch_op.drop_index('ix_batch_proposals_batch_status_score')
    op.drop_table('batch_proposals')
