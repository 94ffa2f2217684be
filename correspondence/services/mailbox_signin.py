"""How a mailbox connected with OAuth2 signs in at run time, for IMAP polling and for SMTP alike: one
OAuthLogin per mailbox per process, and the refresh token the provider rotates kept on the mailbox.

Here in the kernel (not in intake/) because both intake (IMAP) and drafting (SMTP) use a connected mailbox,
and neither may import the other.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from correspondence.db import Database
from correspondence.models import MailboxAccount
from correspondence.services import mailbox_oauth
from correspondence.services.mailbox_oauth import AccessToken, OAuthLogin, Provider

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


# A renewal under the mailbox's lock waits at most this long for the provider (the lock is held meanwhile).
LOCKED_RENEWAL_TIMEOUT = 15.0


def _lock_mailbox(session: Session, mailbox_id: int) -> MailboxAccount | None:
    """Take the mailbox's renewal lock in this transaction and read its row as it is now.

    PostgreSQL: SELECT ... FOR UPDATE on the row, so two renewals of one mailbox take turns and nothing else
    waits. SQLite has no row locks: a write as the transaction's first statement takes the database's write
    lock (as BEGIN IMMEDIATE does), which another renewal also needs first. It is held for one token request,
    a fraction of a second against the providers, bounded by LOCKED_RENEWAL_TIMEOUT.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("UPDATE mailbox_accounts SET id = id WHERE id = :id"), {"id": mailbox_id})
    row = session.scalar(select(MailboxAccount).where(MailboxAccount.id == mailbox_id)
                         .with_for_update().execution_options(populate_existing=True))
    return row


def renew_locked(session: Session, mailbox_id: int, held: str, provider: Provider, *,
                 secret_key: str) -> tuple[AccessToken, str]:
    """Renew the mailbox's access token holding its lock: re-read the refresh token stored, which is the live
    one if another process renewed (and a provider that rotates strictly refuses the one held here), renew
    with it and keep the one handed out. Flushes; the lock is released when the caller's transaction ends."""
    row = _lock_mailbox(session, mailbox_id)
    stored = (mailbox_oauth.decrypt_token(secret_key, row.refresh_token_encrypted)
              if row is not None and row.auth_kind == "oauth2" and row.refresh_token_encrypted else None)
    live = stored or held
    if stored is not None and stored != held:
        log.info("oauth2 mailbox_id=%s renewed by another process meanwhile; using its refresh token", mailbox_id)
    access, rotated = mailbox_oauth.refresh(provider, live, timeout=LOCKED_RENEWAL_TIMEOUT)
    if rotated != stored:
        keep_refresh_token(session, mailbox_id, rotated, secret_key=secret_key)
    return access, rotated


def locked_renewal(store: Database | Session, mailbox_id: int, provider: Provider, *,
                   secret_key: str) -> Callable[[str], tuple[AccessToken, str]]:
    """An OAuthLogin.renew for this mailbox: with a Database, each renewal is its own transaction, committed
    (the rotated token stored) before the lock is released; with a Session, the renewal joins the caller's
    transaction and the lock is held until the caller commits (on SQLite a writer already holds it)."""

    def renew(held: str) -> tuple[AccessToken, str]:
        if isinstance(store, Database):
            with store.unit_of_work() as session:
                return renew_locked(session, mailbox_id, held, provider, secret_key=secret_key)
        return renew_locked(store, mailbox_id, held, provider, secret_key=secret_key)

    return renew
