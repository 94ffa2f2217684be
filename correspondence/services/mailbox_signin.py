"""How a mailbox connected with OAuth2 signs in at run time, for IMAP polling and for SMTP alike: one
OAuthLogin per mailbox per process, and the refresh token the provider rotates kept on the mailbox.

Here in the kernel (not in intake/) because both intake (IMAP) and drafting (SMTP) use a connected mailbox,
and neither may import the other.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import select
from sqlalchemy.orm import Session

from correspondence.models import MailboxAccount
from correspondence.services import mailbox_oauth
from correspondence.services.mailbox_oauth import OAuthLogin, Provider

log = logging.getLogger(__name__)

# One OAuthLogin per mailbox sign-in per process, so an access token is reused until it is nearly spent
# instead of being renewed at every poll. Keyed by the stored (encrypted) token: connecting the mailbox again,
# or storing a rotated token, gives a new key.
_LOGINS: dict[tuple[str, str, str], OAuthLogin] = {}
_LOGINS_LOCK = threading.Lock()


def login_for(row: MailboxAccount, secret_key: str) -> OAuthLogin:
    """The mailbox's sign-in; raises ValueError when it has none stored, TokenUnreadable under another key."""
    if row.oauth_provider is None or not row.refresh_token_encrypted or not row.oauth_client_id:
        raise ValueError("this mailbox has no OAuth2 sign-in stored; connect it again")
    key = (row.name, row.oauth_client_id, row.refresh_token_encrypted)
    with _LOGINS_LOCK:
        login = _LOGINS.get(key)
        if login is None:
            secret = (mailbox_oauth.decrypt_token(secret_key, row.oauth_client_secret_encrypted)
                      if row.oauth_client_secret_encrypted else "")
            provider = Provider.of(row.oauth_provider, row.oauth_client_id, client_secret=secret,
                                   token_url=row.oauth_token_url or "")
            login = OAuthLogin(provider, mailbox_oauth.decrypt_token(secret_key, row.refresh_token_encrypted))
            _LOGINS[key] = login
        return login


def mailbox_named(session: Session, name: str) -> MailboxAccount | None:
    return session.scalar(select(MailboxAccount).where(MailboxAccount.name == name))


def keep_refresh_token(session: Session, account_id: int, refresh_token: str, *, secret_key: str) -> bool:
    """Store (encrypted) the refresh token the provider last handed out for this mailbox; False if it was
    the one stored already. Flushes; the caller commits.

    Not an audit event: with a provider that rotates at every renewal and workers that start fresh for
    each job, this runs at every poll, and it changes nothing anyone decided (connecting is audited).
    """
    row = session.get(MailboxAccount, account_id)
    if row is None or row.auth_kind != "oauth2":
        return False  # removed, or switched back to a password, while the poll ran: nothing to keep
    if row.refresh_token_encrypted and \
            mailbox_oauth.decrypt_token(secret_key, row.refresh_token_encrypted) == refresh_token:
        return False
    old_key = (row.name, row.oauth_client_id or "", row.refresh_token_encrypted or "")
    row.refresh_token_encrypted = mailbox_oauth.encrypt_token(secret_key, refresh_token)
    session.flush()
    with _LOGINS_LOCK:
        # This process's sign-in already holds the new token: find it again under the new stored value.
        login = _LOGINS.pop(old_key, None)
        if login is not None:
            _LOGINS[(row.name, row.oauth_client_id or "", row.refresh_token_encrypted)] = login
    log.info("oauth2 refresh token rotated mailbox_id=%s", account_id)
    return True
