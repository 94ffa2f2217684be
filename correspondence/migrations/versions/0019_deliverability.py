"""deliverability: bounces received and suppressed email addresses

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 16:32:17.841674
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0019'
down_revision: str | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('email_suppressions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('address', sa.String(length=320), nullable=False),
    sa.Column('reason', sa.Enum('complaint', 'invalid', 'unsubscribed', name='suppression_reason', native_enum=False, create_constraint=True, length=20), nullable=True),
    sa.Column('detail', sa.String(length=500), nullable=True),
    sa.Column('since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('soft_bounces', sa.Integer(), nullable=False),
    sa.Column('last_bounce_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_email_suppressions')),
    sa.UniqueConstraint('address', name=op.f('uq_email_suppressions_address'))
    )
    op.create_table('bounces',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=255), nullable=False),
    sa.Column('raw_sha256', sa.String(length=64), nullable=False),
    sa.Column('source', sa.String(length=100), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state', sa.Enum('applied', 'quarantined', name='bounce_state', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('kind', sa.Enum('hard', 'soft', 'complaint', name='bounce_kind', native_enum=False, create_constraint=True, length=20), nullable=True),
    sa.Column('response_id', sa.Integer(), nullable=True),
    sa.Column('address', sa.String(length=320), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=True),
    sa.Column('diagnostic', sa.String(length=500), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['raw_sha256'], ['blobs.sha256'], name=op.f('fk_bounces_raw_sha256_blobs')),
    sa.ForeignKeyConstraint(['response_id'], ['responses.id'], name=op.f('fk_bounces_response_id_responses')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bounces')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_bounces_idempotency_key'))
    )
    with op.batch_alter_table('bounces', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bounces_response_id'), ['response_id'], unique=False)
        batch_op.create_index('ix_bounces_state_received', ['state', 'received_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('bounces', schema=None) as batch_op:
        batch_op.drop_index('ix_bounces_state_received')
        batch_op.drop_index(batch_op.f('ix_bounces_response_id'))

    op.drop_table('bounces')
    op.drop_table('email_suppressions')
