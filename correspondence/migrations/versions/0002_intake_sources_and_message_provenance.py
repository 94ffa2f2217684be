"""intake sources and message provenance

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('intake_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('token_sha256', sa.String(length=64), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['staffers.id'], name=op.f('fk_intake_tokens_created_by_id_staffers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_intake_tokens')),
    sa.UniqueConstraint('token_sha256', name=op.f('uq_intake_tokens_token_sha256'))
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('external_id', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('campaign_id', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('organization', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('organization_statement', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('delivery_agent', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('facts', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('match_method', sa.String(length=30), nullable=True))
        batch_op.add_column(sa.Column('match_confidence', sa.Float(), nullable=True))
        batch_op.create_index(batch_op.f('ix_messages_external_id'), ['external_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_messages_external_id'))
        batch_op.drop_column('match_confidence')
        batch_op.drop_column('match_method')
        batch_op.drop_column('facts')
        batch_op.drop_column('delivery_agent')
        batch_op.drop_column('organization_statement')
        batch_op.drop_column('organization')
        batch_op.drop_column('campaign_id')
        batch_op.drop_column('external_id')
        batch_op.drop_column('source')

    op.drop_table('intake_tokens')
