"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# The Library of Congress policy areas as of this revision; later changes get their own migration.
LOC_POLICY_AREAS = (
    'Agriculture and Food',
    'Animals',
    'Armed Forces and National Security',
    'Arts, Culture, Religion',
    'Civil Rights and Liberties, Minority Issues',
    'Commerce',
    'Congress',
    'Crime and Law Enforcement',
    'Economics and Public Finance',
    'Education',
    'Emergency Management',
    'Energy',
    'Environmental Protection',
    'Families',
    'Finance and Financial Sector',
    'Foreign Trade and International Finance',
    'Government Operations and Politics',
    'Health',
    'Housing and Community Development',
    'Immigration',
    'International Affairs',
    'Labor and Employment',
    'Law',
    'Native Americans',
    'Public Lands and Natural Resources',
    'Science, Technology, Communications',
    'Social Sciences and History',
    'Social Welfare',
    'Sports and Recreation',
    'Taxation',
    'Transportation and Public Works',
    'Water Resources Development',
)

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('blobs',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('sha256', name=op.f('pk_blobs'))
    )
    op.create_table('constituents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('prefix', sa.String(length=60), nullable=True),
    sa.Column('first_name', sa.String(length=100), nullable=True),
    sa.Column('middle_name', sa.String(length=100), nullable=True),
    sa.Column('last_name', sa.String(length=100), nullable=True),
    sa.Column('suffix', sa.String(length=30), nullable=True),
    sa.Column('address1', sa.String(length=200), nullable=True),
    sa.Column('address2', sa.String(length=200), nullable=True),
    sa.Column('city', sa.String(length=100), nullable=True),
    sa.Column('state', sa.String(length=2), nullable=True),
    sa.Column('zip5', sa.String(length=5), nullable=True),
    sa.Column('zip4', sa.String(length=4), nullable=True),
    sa.Column('district_status', sa.Enum('in_district', 'out_of_district', 'unknown', name='district_status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_constituents'))
    )
    with op.batch_alter_table('constituents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_constituents_last_name'), ['last_name'], unique=False)
        batch_op.create_index(batch_op.f('ix_constituents_zip5'), ['zip5'], unique=False)

    op.create_table('staffers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('role', sa.Enum('admin', 'supervisor', 'correspondent', 'caseworker', name='role', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('must_change_password', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staffers')),
    sa.UniqueConstraint('email', name=op.f('uq_staffers_email'))
    )
    op.create_table('topics',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('loc_policy_area', sa.Boolean(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_topics')),
    sa.UniqueConstraint('name', name=op.f('uq_topics_name'))
    )
    op.create_table('audit_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=60), nullable=False),
    sa.Column('object_type', sa.String(length=40), nullable=False),
    sa.Column('object_id', sa.String(length=64), nullable=False),
    sa.Column('before', sa.JSON(), nullable=True),
    sa.Column('after', sa.JSON(), nullable=True),
    sa.Column('detail', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['actor_id'], ['staffers.id'], name=op.f('fk_audit_events_actor_id_staffers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_events_action'), ['action'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_events_at'), ['at'], unique=False)
        batch_op.create_index('ix_audit_events_object', ['object_type', 'object_id'], unique=False)

    op.create_table('constituent_emails',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('constituent_id', sa.Integer(), nullable=False),
    sa.Column('address', sa.String(length=320), nullable=False),
    sa.ForeignKeyConstraint(['constituent_id'], ['constituents.id'], name=op.f('fk_constituent_emails_constituent_id_constituents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_constituent_emails')),
    sa.UniqueConstraint('address', name=op.f('uq_constituent_emails_address'))
    )
    with op.batch_alter_table('constituent_emails', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_constituent_emails_constituent_id'), ['constituent_id'], unique=False)

    op.create_table('constituent_phones',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('constituent_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=20), nullable=False),
    sa.ForeignKeyConstraint(['constituent_id'], ['constituents.id'], name=op.f('fk_constituent_phones_constituent_id_constituents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_constituent_phones'))
    )
    with op.batch_alter_table('constituent_phones', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_constituent_phones_constituent_id'), ['constituent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_constituent_phones_number'), ['number'], unique=False)

    op.create_table('messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=255), nullable=False),
    sa.Column('channel', sa.Enum('email', 'webform', 'cwc', 'postal', 'phone', 'social', name='channel', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('direction', sa.Enum('inbound', 'outbound', name='direction', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('from_name', sa.String(length=200), nullable=True),
    sa.Column('from_address', sa.String(length=320), nullable=True),
    sa.Column('subject', sa.String(length=500), nullable=False),
    sa.Column('body_text', sa.Text(), nullable=False),
    sa.Column('body_html', sa.Text(), nullable=True),
    sa.Column('raw_sha256', sa.String(length=64), nullable=True),
    sa.Column('constituent_id', sa.Integer(), nullable=True),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('topic_id', sa.Integer(), nullable=True),
    sa.Column('stance', sa.Enum('support', 'oppose', 'neutral', name='stance', native_enum=False, create_constraint=True, length=20), nullable=True),
    sa.Column('status', sa.Enum('new', 'assigned', 'in_progress', 'awaiting_approval', 'responded', 'closed', 'quarantined', 'archived', name='message_status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('status_reason', sa.String(length=500), nullable=True),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['assignee_id'], ['staffers.id'], name=op.f('fk_messages_assignee_id_staffers')),
    sa.ForeignKeyConstraint(['constituent_id'], ['constituents.id'], name=op.f('fk_messages_constituent_id_constituents')),
    sa.ForeignKeyConstraint(['raw_sha256'], ['blobs.sha256'], name=op.f('fk_messages_raw_sha256_blobs')),
    sa.ForeignKeyConstraint(['topic_id'], ['topics.id'], name=op.f('fk_messages_topic_id_topics')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_messages')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_messages_idempotency_key'))
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_assignee_status', ['assignee_id', 'status', 'received_at', 'due_at'], unique=False)
        batch_op.create_index('ix_messages_channel_status', ['channel', 'status'], unique=False)
        batch_op.create_index('ix_messages_topic_status', ['topic_id', 'status'], unique=False)
        batch_op.create_index('ix_messages_constituent_received', ['constituent_id', 'received_at'], unique=False)
        batch_op.create_index('ix_messages_received', ['received_at', 'id'], unique=False)
        batch_op.create_index('ix_messages_status_received', ['status', 'received_at', 'id'], unique=False)
        batch_op.create_index('ix_messages_topic_received', ['topic_id', 'received_at'], unique=False)
        batch_op.create_index('ix_messages_unprocessed', ['processed_at', 'created_at'], unique=False)
    topics = sa.table("topics", sa.column("name", sa.String), sa.column("loc_policy_area", sa.Boolean),
                      sa.column("active", sa.Boolean))
    op.bulk_insert(topics, [{"name": n, "loc_policy_area": True, "active": True} for n in LOC_POLICY_AREAS])


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_unprocessed')
        batch_op.drop_index('ix_messages_topic_received')
        batch_op.drop_index('ix_messages_status_received')
        batch_op.drop_index('ix_messages_received')
        batch_op.drop_index('ix_messages_constituent_received')
        batch_op.drop_index('ix_messages_topic_status')
        batch_op.drop_index('ix_messages_channel_status')
        batch_op.drop_index('ix_messages_assignee_status')

    op.drop_table('messages')
    with op.batch_alter_table('constituent_phones', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_constituent_phones_number'))
        batch_op.drop_index(batch_op.f('ix_constituent_phones_constituent_id'))

    op.drop_table('constituent_phones')
    with op.batch_alter_table('constituent_emails', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_constituent_emails_constituent_id'))

    op.drop_table('constituent_emails')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_object')
        batch_op.drop_index(batch_op.f('ix_audit_events_at'))
        batch_op.drop_index(batch_op.f('ix_audit_events_action'))

    op.drop_table('audit_events')
    op.drop_table('topics')
    op.drop_table('staffers')
    with op.batch_alter_table('constituents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_constituents_zip5'))
        batch_op.drop_index(batch_op.f('ix_constituents_last_name'))

    op.drop_table('constituents')
    op.drop_table('blobs')
