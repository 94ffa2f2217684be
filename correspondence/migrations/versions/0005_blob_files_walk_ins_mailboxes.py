"""blob bytes as files, walk-in channel, IMAP mailboxes and district ZIPs edited in the UI

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_CHANNELS = ('email', 'webform', 'cwc', 'postal', 'phone', 'social')
NEW_CHANNELS = (*OLD_CHANNELS, 'walk_in')


def _channel(values: tuple[str, ...]) -> sa.Enum:
    return sa.Enum(*values, name='channel', native_enum=False, create_constraint=True, length=20)


def upgrade() -> None:
    op.create_table('mailbox_accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('port', sa.Integer(), nullable=False),
    sa.Column('security', sa.String(length=10), nullable=False),
    sa.Column('username', sa.String(length=255), nullable=False),
    sa.Column('password_encrypted', sa.String(length=1000), nullable=False),
    sa.Column('folders', sa.JSON(), nullable=False),
    sa.Column('processed_folder', sa.String(length=255), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('last_checked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_check_result', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mailbox_accounts')),
    sa.UniqueConstraint('name', name=op.f('uq_mailbox_accounts_name'))
    )
    op.create_table('district_zips',
    sa.Column('zip', sa.String(length=9), nullable=False),
    sa.PrimaryKeyConstraint('zip', name=op.f('pk_district_zips'))
    )
    # Rows written before this release keep their bytes in the column; new ones are files.
    with op.batch_alter_table('blobs', schema=None) as batch_op:
        batch_op.alter_column('data', existing_type=sa.LargeBinary(), nullable=True)
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.alter_column('channel', existing_type=_channel(OLD_CHANNELS), type_=_channel(NEW_CHANNELS),
                              existing_nullable=False)


def downgrade() -> None:
    op.execute("UPDATE messages SET channel = 'phone' WHERE channel = 'walk_in'")
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.alter_column('channel', existing_type=_channel(NEW_CHANNELS), type_=_channel(OLD_CHANNELS),
                              existing_nullable=False)
    with op.batch_alter_table('blobs', schema=None) as batch_op:
        batch_op.alter_column('data', existing_type=sa.LargeBinary(), nullable=False)
    op.drop_table('district_zips')
    op.drop_table('mailbox_accounts')
