"""api tokens: staff API tokens with scopes, and the API's idempotency keys

Revision ID: 0021_api_tokens
Revises: 0020
Create Date: 2026-12-03 19:20:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0021_api_tokens'
down_revision: str | None = '0020'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('staff_api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('token_sha256', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('staffer_id', sa.Integer(), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['staffers.id'], name=op.f('fk_staff_api_tokens_created_by_id_staffers')),
    sa.ForeignKeyConstraint(['staffer_id'], ['staffers.id'], name=op.f('fk_staff_api_tokens_staffer_id_staffers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_api_tokens')),
    sa.UniqueConstraint('token_sha256', name=op.f('uq_staff_api_tokens_token_sha256'))
    )
    with op.batch_alter_table('staff_api_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_api_tokens_staffer_id'), ['staffer_id'], unique=False)
    op.create_table('api_idempotency_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('request_sha256', sa.String(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=False),
    sa.Column('response', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['token_id'], ['staff_api_tokens.id'], name=op.f('fk_api_idempotency_keys_token_id_staff_api_tokens'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_idempotency_keys')),
    sa.UniqueConstraint('token_id', 'key', name='uq_api_idempotency_keys_token_key')
    )
    with op.batch_alter_table('api_idempotency_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_idempotency_keys_created_at'), ['created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('api_idempotency_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_idempotency_keys_created_at'))
    op.drop_table('api_idempotency_keys')
    with op.batch_alter_table('staff_api_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_api_tokens_staffer_id'))
    op.drop_table('staff_api_tokens')
