"""subscriptions: lists, subscriptions with provenance, newsletters

Revision ID: 0023_subscriptions
Revises: 0022_office_closing
Create Date: 2026-12-03 19:20:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0023_subscriptions'
down_revision: str | None = '0022_office_closing'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('subscription_lists',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.String(length=1000), nullable=True),
    sa.Column('public', sa.Boolean(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['staffers.id'], name=op.f('fk_subscription_lists_created_by_id_staffers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subscription_lists')),
    sa.UniqueConstraint('name', name=op.f('uq_subscription_lists_name'))
    )
    op.create_table('subscriptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('list_id', sa.Integer(), nullable=False),
    sa.Column('address', sa.String(length=320), nullable=False),
    sa.Column('constituent_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.Enum('pending', 'subscribed', 'unsubscribed', name='subscription_status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('source', sa.Enum('cwc', 'webform', 'signup', 'import', 'staff', name='subscription_source', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('legal_basis', sa.String(length=500), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('subscribed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('unsubscribed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['constituent_id'], ['constituents.id'], name=op.f('fk_subscriptions_constituent_id_constituents')),
    sa.ForeignKeyConstraint(['list_id'], ['subscription_lists.id'], name=op.f('fk_subscriptions_list_id_subscription_lists')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subscriptions')),
    sa.UniqueConstraint('list_id', 'address', name='uq_subscriptions_list_address')
    )
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subscriptions_address'), ['address'], unique=False)
        batch_op.create_index(batch_op.f('ix_subscriptions_constituent_id'), ['constituent_id'], unique=False)
        batch_op.create_index('ix_subscriptions_list_status', ['list_id', 'status', 'id'], unique=False)
    op.create_table('newsletters',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('list_id', sa.Integer(), nullable=True),
    sa.Column('segment_id', sa.Integer(), nullable=True),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('web_token', sa.String(length=64), nullable=False),
    sa.Column('subject', sa.String(length=500), nullable=False),
    sa.Column('body_text', sa.Text(), nullable=False),
    sa.Column('recipients', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['staffers.id'], name=op.f('fk_newsletters_created_by_id_staffers')),
    sa.ForeignKeyConstraint(['list_id'], ['subscription_lists.id'], name=op.f('fk_newsletters_list_id_subscription_lists')),
    sa.ForeignKeyConstraint(['run_id'], ['apply_runs.id'], name=op.f('fk_newsletters_run_id_apply_runs')),
    sa.ForeignKeyConstraint(['segment_id'], ['segments.id'], name=op.f('fk_newsletters_segment_id_segments')),
    sa.ForeignKeyConstraint(['version_id'], ['letter_versions.id'], name=op.f('fk_newsletters_version_id_letter_versions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_newsletters')),
    sa.UniqueConstraint('web_token', name=op.f('uq_newsletters_web_token'))
    )
    with op.batch_alter_table('newsletters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_newsletters_list_id'), ['list_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('newsletters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_newsletters_list_id'))
    op.drop_table('newsletters')
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.drop_index('ix_subscriptions_list_status')
        batch_op.drop_index(batch_op.f('ix_subscriptions_constituent_id'))
        batch_op.drop_index(batch_op.f('ix_subscriptions_address'))
    op.drop_table('subscriptions')
    op.drop_table('subscription_lists')
