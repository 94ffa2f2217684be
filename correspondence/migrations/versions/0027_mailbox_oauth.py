"""mailboxes that sign in with OAuth2 (Microsoft 365, Google): provider and encrypted refresh token

Revision ID: 0027_mailbox_oauth
Revises: 0026_webhooks
Create Date: 2026-12-03 20:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0027_mailbox_oauth'
down_revision: str | None = '0026_webhooks'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('mailbox_accounts') as batch:
        batch.add_column(sa.Column('auth_kind', sa.String(length=10), server_default='password', nullable=False))
        batch.add_column(sa.Column('oauth_provider', sa.String(length=20), nullable=True))
        batch.add_column(sa.Column('oauth_client_id', sa.String(length=255), nullable=True))
        batch.add_column(sa.Column('oauth_token_url', sa.String(length=500), nullable=True))
        batch.add_column(sa.Column('oauth_client_secret_encrypted', sa.String(length=1000), nullable=True))
        batch.add_column(sa.Column('refresh_token_encrypted', sa.String(length=8000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('mailbox_accounts') as batch:
        for column in ('refresh_token_encrypted', 'oauth_client_secret_encrypted', 'oauth_token_url',
                       'oauth_client_id', 'oauth_provider', 'auth_kind'):
            batch.drop_column(column)
