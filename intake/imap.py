"""IMAP: poll mailboxes, store each message once, and only then flag or move it on the server.

The folder's UIDVALIDITY and the last stored UID are kept in the database. A poll cut off at any
point loses nothing: whatever was committed is found again by its idempotency key, and whatever
was not committed is still unflagged on the server.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import LoginError
from sqlalchemy import select
from sqlalchemy.orm import Session

from correspondence import secretbox
from correspondence.db import Database
from correspondence.models import IntakeCursor, MailboxAccount
from correspondence.network import plain_text_refused
from correspondence.secretbox import SecretUnreadable
from correspondence.services import mailbox_signin
from correspondence.services.mailbox_oauth import OAuthLogin, TokenUnreadable
from intake.importer import Summary, _merge, import_items
from intake.mail import incoming_email
from intake.pipeline import Rules

log = logging.getLogger(__name__)

STORED_FLAG = b"$MailroomStored"
PURPOSES = ("intake", "bounces")
# Stores one chunk of (key, raw bytes) from a mailbox, committing each, before the server is told.
Store = Callable[[Database, Iterable[tuple[str, bytes]], str], object]


@dataclass(frozen=True)
class ImapAccount:
    name: str
    host: str
    username: str
    password: str
    port: int = 993
    ssl: bool = True
    starttls: bool = False
    folders: tuple[str, ...] = ("INBOX",)
    processed_folder: str | None = None
    # "intake" (letters from the public) or "bounces" (the return-path mailbox: delivery reports, outbound/).
    purpose: str = "intake"
    # Set for a mailbox that signs in with OAuth2 (XOAUTH2 / OAUTHBEARER) instead of `password`.
    oauth: OAuthLogin | None = field(default=None, compare=False, repr=False)
    # The mailbox row of one added in the intake page (None: from MAILROOM_IMAP_ACCOUNTS).
    mailbox_id: int | None = field(default=None, compare=False)

    @classmethod
    def from_dict(cls, data: dict) -> ImapAccount:
        missing = [k for k in ("name", "host", "username", "password") if not data.get(k)]
        if missing:
            raise ValueError(f"IMAP account needs {', '.join(missing)}")
        account = cls(name=str(data["name"]), host=str(data["host"]), username=str(data["username"]),
                      password=str(data["password"]), port=int(data.get("port", 993)),
                      ssl=bool(data.get("ssl", True)), starttls=bool(data.get("starttls", False)),
                      folders=tuple(data.get("folders", ("INBOX",))),
                      processed_folder=data.get("processed_folder") or None,
                      purpose=str(data.get("purpose") or "intake"))
        if account.purpose not in PURPOSES:
            raise ValueError(f"IMAP account {account.name!r}: purpose must be one of {', '.join(PURPOSES)}")
        if (refused := account.plain_text_refused()) is not None:
            raise ValueError(f"IMAP account {account.name!r}: {refused}")
        return account

    def plain_text_refused(self) -> str | None:
        """Why this account may not connect (no TLS to another machine), or None."""
        return None if self.ssl or self.starttls else plain_text_refused("IMAP", self.host)


def accounts_from_db(session: Session, secret_key: str) -> list[ImapAccount]:
    """The active mailboxes added in the intake sources page; one whose password cannot be read is skipped."""
    accounts = []
    for row in session.scalars(select(MailboxAccount).where(MailboxAccount.active.is_(True))):
        try:
            accounts.append(account_from_record(row, secret_key))
        except (SecretUnreadable, TokenUnreadable):
            log.error("imap mailbox %s: stored password or sign-in unreadable (SECRET_KEY changed?)", row.name)
        except ValueError as exc:
            log.error("imap mailbox %s: %s", row.name, exc)
    return accounts


def oauth_login_for(row: MailboxAccount, secret_key: str) -> OAuthLogin:
    return mailbox_signin.login_for(row, secret_key)


def account_from_record(row: MailboxAccount, secret_key: str) -> ImapAccount:
    oauth = oauth_login_for(row, secret_key) if row.auth_kind == "oauth2" else None
    password = "" if oauth is not None else secretbox.decrypt(secret_key, row.password_encrypted)
    return ImapAccount(name=row.name, host=row.host, username=row.username,
                       password=password, port=row.port,
                       ssl=row.security == "ssl", starttls=row.security == "starttls",
                       folders=tuple(row.folders or ("INBOX",)), processed_folder=row.processed_folder,
                       oauth=oauth, mailbox_id=row.id)


def save_rotated_token(session: Session, row: MailboxAccount, login: OAuthLogin, secret_key: str) -> bool:
    """Keep the refresh token the provider last handed out (Microsoft and others rotate them)."""
    return mailbox_signin.keep_refresh_token(session, row.id, login.refresh_token, secret_key=secret_key)


def keep_rotated_tokens(db: Database, account: ImapAccount, secret_key: str) -> None:
    """Renew this mailbox's sign-in under its lock, each renewal in its own commit that stores the refresh
    token the provider hands out in place of the last: at once, not after the poll, because a provider that
    rotates may refuse the old one from then on, and before the lock is released, so another process renewing
    the same mailbox (a send, "Check connection") takes its turn with the live token
    (mailbox_signin.locked_renewal)."""
    if account.oauth is None or account.mailbox_id is None:
        return
    account.oauth.renew = mailbox_signin.locked_renewal(db, account.mailbox_id, account.oauth.provider,
                                                        secret_key=secret_key)


def accounts_from_json(raw: str) -> list[ImapAccount]:
    """Accounts from MAILROOM_IMAP_ACCOUNTS: a JSON list of objects."""
    if not raw.strip():
        return []
    data = json.loads(raw)
    if not isinstance(data, list):
        raise ValueError("MAILROOM_IMAP_ACCOUNTS must be a JSON list of accounts")
    return [ImapAccount.from_dict(d) for d in data]


@dataclass
class PollResult:
    summary: Summary = field(default_factory=Summary)
    folders: dict[str, int] = field(default_factory=dict)


class InsecureConnection(ValueError):
    """A clear-text connection to another machine was asked for and refused."""


def connect(account: ImapAccount, *, timeout: float = 60) -> IMAPClient:
    # Checked again here, not only when an account is saved: a row saved before the rule, or
    # edited in the database, must still not send a password in clear text over the network.
    if (refused := account.plain_text_refused()) is not None:
        raise InsecureConnection(refused)
    client = _open(account, timeout)
    if account.oauth is None:
        client.login(account.username, account.password)
        return client
    try:
        _oauth_login(client, account, account.oauth.access_token())
    except LoginError as refused:
        # The server refused the token (expired early, revoked, or issued for something else):
        # renew it at the provider and try once more on a new connection.
        log.info("imap mailbox %s: server refused the access token (%s); renewing it", account.name, refused)
        _close(client)
        client = _open(account, timeout)
        _oauth_login(client, account, account.oauth.access_token(force=True))
    return client


def _open(account: ImapAccount, timeout: float) -> IMAPClient:
    client = IMAPClient(account.host, port=account.port, ssl=account.ssl, timeout=timeout)
    if account.starttls:
        client.starttls()
    return client


def _close(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:  # a refused login may already have closed the connection
        log.debug("imap logout after a refused login failed", exc_info=True)


def _oauth_login(client: IMAPClient, account: ImapAccount, token: str) -> None:
    """Microsoft 365 and Gmail take XOAUTH2; any other provider gets the standard OAUTHBEARER."""
    assert account.oauth is not None
    if account.oauth.provider.kind in ("microsoft", "google"):
        client.oauth2_login(account.username, token)
    else:
        client.oauthbearer_login(account.username, token)


def check_connection(account: ImapAccount, *, timeout: float = 60) -> list[str]:
    """Sign in and list the folders: what the admin's "check connection" shows."""
    client = connect(account, timeout=timeout)
    try:
        return [name for _flags, _delim, name in client.list_folders()]
    finally:
        client.logout()


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def poll_account(db: Database, account: ImapAccount, *, max_bytes: int, rules: Rules | None = None,
                 batch: int = 25, after_commit: Callable[[IMAPClient], None] | None = None,
                 store: Store | None = None) -> PollResult:
    """Fetch every new message of each folder; commit, then acknowledge on the server, batch by batch.

    ``store`` replaces the intake pipeline for a mailbox of another purpose (the bounce mailbox:
    outbound.bounces.import_reports); the cursor and the acknowledgement work the same way.
    """
    result = PollResult()
    client = connect(account)
    try:
        for folder in account.folders:
            info = client.select_folder(folder)
            validity = int(info[b"UIDVALIDITY"])
            key = f"imap:{account.name}:{account.username}@{account.host}:{folder}"
            with db.unit_of_work() as s:
                cursor = s.get(IntakeCursor, key)
                state = dict(cursor.value) if cursor else {}
            # A new UIDVALIDITY means the server renumbered the folder: look at everything again;
            # idempotency keys make sure nothing already stored is stored twice.
            last = int(state.get("last_uid", 0)) if state.get("uidvalidity") == validity else 0
            uids = sorted(u for u in client.search(["UID", f"{last + 1}:*", "NOT", "KEYWORD", STORED_FLAG.decode()])
                          if u > last)
            result.folders[folder] = len(uids)
            for chunk in _chunks(uids, batch):
                fetched = client.fetch(chunk, [b"BODY.PEEK[]"])
                items = ((f"{folder}#{uid}", fetched[uid][b"BODY[]"]) for uid in chunk if uid in fetched)
                if store is not None:
                    store(db, items, f"imap:{account.name}")
                else:
                    part = import_items(db, items, incoming_email, source=f"imap:{account.name}",
                                        max_bytes=max_bytes, rules=rules)
                    _merge(result.summary, part)
                if after_commit is not None:
                    after_commit(client)
                # Acknowledge only what is now safely in the database.
                if account.processed_folder:
                    client.move(chunk, account.processed_folder)
                else:
                    client.add_flags(chunk, [STORED_FLAG, b"\\Seen"])
                with db.unit_of_work() as s:
                    cursor = s.get(IntakeCursor, key)
                    value = {"uidvalidity": validity, "last_uid": max(chunk)}
                    if cursor is None:
                        s.add(IntakeCursor(key=key, value=value))
                    else:
                        cursor.value = value
            log.info("imap poll account=%s folder=%s new=%d", account.name, folder, len(uids))
    finally:
        try:
            client.logout()
        except Exception:  # a connection already cut has nothing left to close
            log.debug("imap logout failed account=%s", account.name, exc_info=True)
    return result


def poll_all(db: Database, *, accounts_json: str, secret_key: str, max_bytes: int, rules: Rules,
             store_for: Callable[[ImapAccount], Any] | None = None, include_db: bool = True) -> dict[str, int]:
    """Poll every configured account (the environment's and the admin's); messages stored per account,
    -1 for one that failed. Idempotent: stored messages are found again by their key.

    ``store_for(account)`` may give an account its own store (the bounce mailbox's reports go to the
    bounce intake, not the inbox); for those the count is of messages taken from the mailbox.

    One unreachable mailbox must not stop the others; the next poll tries it again. Without `include_db`
    (an office that has closed) the mailboxes added in the intake page are left alone.
    """
    with db.unit_of_work() as session:
        accounts = accounts_from_json(accounts_json) + (accounts_from_db(session, secret_key) if include_db else [])
    totals: dict[str, int] = {}
    for account in accounts:
        try:
            store = store_for(account) if store_for is not None else None
            keep_rotated_tokens(db, account, secret_key)
            result = poll_account(db, account, max_bytes=max_bytes, rules=rules, store=store)
            totals[account.name] = sum(result.folders.values()) if store is not None else result.summary.received
        except Exception:
            log.exception("imap poll failed account=%s", account.name)
            totals[account.name] = -1
    return totals
