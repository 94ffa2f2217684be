"""Intake sources an admin edits in the UI: IMAP mailboxes and the office's district ZIP list."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from correspondence import secretbox
from correspondence.errors import NotFound, ValidationFailed
from correspondence.models import DistrictZip, MailboxAccount, utcnow
from correspondence.network import plain_text_refused
from correspondence.services import mailbox_oauth
from correspondence.services.audit import record
from correspondence.services.mailbox_oauth import PROVIDERS, Provider

SECURITY = ("ssl", "starttls", "none")
_FOLDER = re.compile(r"[^\x00-\x1f\x7f]{1,255}")


def _server_errors(session: Session, *, name: str, host: str, port: str | int, security: str, username: str,
                   folders: str, processed_folder: str,
                   password: str | None = None) -> tuple[list[str], int, list[str]]:
    """What is wrong with a new mailbox's name and server (every problem at once), its port and folders.

    `password` None: the mailbox signs in another way (OAuth2), so none is asked for."""
    errors = []
    if not name:
        errors.append("name the mailbox")
    elif session.scalar(select(MailboxAccount.id).where(MailboxAccount.name == name)) is not None:
        errors.append(f"a mailbox named {name!r} exists already")
    if not re.fullmatch(r"[A-Za-z0-9.-]{1,253}|\[?[0-9A-Fa-f:.]{2,45}\]?", host):
        errors.append("host must be a host name or IP address")
    try:
        port_number = int(port or (993 if security == "ssl" else 143))
        if not 0 < port_number < 65536:
            raise ValueError
    except ValueError:
        errors.append("port must be a number from 1 to 65535")
        port_number = 0
    if security not in SECURITY:
        errors.append("security must be ssl, starttls or none")
    elif security == "none" and (refused := plain_text_refused("IMAP", host)):
        errors.append(refused)
    if not username:
        errors.append("enter the user name")
    if password is not None and not password:
        errors.append("enter the password")
    folder_list = [f.strip() for f in folders.replace("\n", ",").split(",") if f.strip()] or ["INBOX"]
    if not all(_FOLDER.fullmatch(f) for f in folder_list + ([processed_folder.strip()] if processed_folder else [])):
        errors.append("folder names must be printable text")
    return errors, port_number, folder_list


def add_mailbox(session: Session, *, secret_key: str, name: str, host: str, port: str | int, security: str,
                username: str, password: str, folders: str, processed_folder: str = "",
                actor_id: int | None) -> MailboxAccount:
    name, host, username = name.strip(), host.strip(), username.strip()
    errors, port_number, folder_list = _server_errors(session, name=name, host=host, port=port, security=security,
                                                      username=username, folders=folders,
                                                      processed_folder=processed_folder, password=password)
    if errors:
        raise ValidationFailed("; ".join(errors))
    account = MailboxAccount(name=name[:120], host=host, port=port_number, security=security, username=username,
                             password_encrypted=secretbox.encrypt(secret_key, password), folders=folder_list,
                             processed_folder=processed_folder.strip() or None, active=True)
    session.add(account)
    session.flush()
    record(session, actor_id=actor_id, action="mailbox.create", object_type="mailbox", object_id=account.id,
           after={"name": account.name, "host": host, "port": port_number, "security": security,
                  "username": username, "folders": folder_list, "processed_folder": account.processed_folder})
    return account


# The IMAP server of each provider's mailboxes, used when the admin leaves the host blank.
OAUTH_IMAP_SERVERS = {"microsoft": "outlook.office365.com", "google": "imap.gmail.com"}


@dataclass(frozen=True)
class MailboxPlan:
    """A mailbox about to be connected with OAuth2: what the admin typed (or the mailbox being connected
    again), kept while they sign in at the provider. Nothing secret is in it."""

    provider: str
    name: str
    username: str
    host: str
    port: int
    security: str
    folders: tuple[str, ...]
    processed_folder: str | None = None
    account_id: int | None = None  # an existing mailbox connected again

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "folders": list(self.folders)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MailboxPlan:
        return cls(**{**data, "folders": tuple(data.get("folders") or ("INBOX",))})


def plan_oauth_mailbox(session: Session, *, provider: str, name: str, username: str, host: str = "",
                       port: str | int = "", security: str = "ssl", folders: str = "",
                       processed_folder: str = "") -> MailboxPlan:
    """Check a new OAuth2 mailbox before the admin is sent to the provider (so a typo is not found after)."""
    if provider not in PROVIDERS:
        raise ValidationFailed(f"choose a provider: {', '.join(PROVIDERS)}")
    name, username = name.strip(), username.strip()
    host = host.strip() or OAUTH_IMAP_SERVERS.get(provider, "")
    errors, port_number, folder_list = _server_errors(session, name=name, host=host, port=port, security=security,
                                                      username=username, folders=folders,
                                                      processed_folder=processed_folder)
    if errors:
        raise ValidationFailed("; ".join(errors))
    return MailboxPlan(provider, name[:120], username, host, port_number, security, tuple(folder_list),
                       processed_folder.strip() or None)


def plan_reconnect(session: Session, account_id: int, *, provider: str) -> MailboxPlan:
    """Connect an existing mailbox (one that used a password, or whose sign-in was revoked) with OAuth2."""
    if provider not in PROVIDERS:
        raise ValidationFailed(f"choose a provider: {', '.join(PROVIDERS)}")
    account = session.get(MailboxAccount, account_id)
    if account is None:
        raise NotFound(f"no mailbox {account_id}")
    return MailboxPlan(provider, account.name, account.username, account.host, account.port, account.security,
                       tuple(account.folders or ("INBOX",)), account.processed_folder, account.id)


def connect_oauth_mailbox(session: Session, plan: MailboxPlan, *, provider: Provider, refresh_token: str,
                          secret_key: str, actor_id: int | None) -> MailboxAccount:
    """Keep the refresh token the provider gave (encrypted) on the mailbox, creating the mailbox if it is new.

    The audit event names the provider, the app and the user name; never a token or the app's secret.
    """
    if not refresh_token:
        raise ValidationFailed("the provider gave no refresh token")
    account = (session.get(MailboxAccount, plan.account_id) if plan.account_id is not None
               else session.scalar(select(MailboxAccount).where(MailboxAccount.name == plan.name)))
    if plan.account_id is not None and account is None:
        raise NotFound(f"no mailbox {plan.account_id}: it was removed while you were signing in")
    if plan.account_id is None and account is not None:
        # Another mailbox took the name while the admin was at the provider: never take over its sign-in.
        raise ValidationFailed(f"a mailbox named {plan.name!r} was added meanwhile; use its own Connect button")
    before = None if account is None else {"auth_kind": account.auth_kind, "oauth_provider": account.oauth_provider,
                                           "oauth_client_id": account.oauth_client_id}
    if account is None:
        account = MailboxAccount(name=plan.name, host=plan.host, port=plan.port, security=plan.security,
                                 username=plan.username, folders=list(plan.folders),
                                 processed_folder=plan.processed_folder, active=True)
        session.add(account)
    account.auth_kind = "oauth2"
    account.password_encrypted = ""  # the password is no longer used: not kept either
    account.oauth_provider = provider.kind
    account.oauth_client_id = provider.client_id
    account.oauth_token_url = provider.token_url
    account.oauth_client_secret_encrypted = (mailbox_oauth.encrypt_token(secret_key, provider.client_secret)
                                             if provider.client_secret else None)
    account.refresh_token_encrypted = mailbox_oauth.encrypt_token(secret_key, refresh_token)
    session.flush()
    record(session, actor_id=actor_id, action="mailbox.oauth_connect", object_type="mailbox", object_id=account.id,
           before=before, after={"name": account.name, "username": account.username, "host": account.host,
                                 "auth_kind": "oauth2", "oauth_provider": provider.kind,
                                 "oauth_client_id": provider.client_id})
    return account


def set_mailbox_active(session: Session, account_id: int, active: bool, *, actor_id: int) -> MailboxAccount:
    account = session.get(MailboxAccount, account_id)
    if account is None:
        raise NotFound(f"no mailbox {account_id}")
    if account.active != active:
        record(session, actor_id=actor_id, action="mailbox.activate" if active else "mailbox.deactivate",
               object_type="mailbox", object_id=account.id, before={"active": account.active},
               after={"active": active})
        account.active = active
    return account


def record_check(session: Session, account_id: int, result: str, *, actor_id: int) -> None:
    account = session.get(MailboxAccount, account_id)
    if account is None:
        raise NotFound(f"no mailbox {account_id}")
    account.last_checked_at = utcnow()
    account.last_check_result = result[:500]
    record(session, actor_id=actor_id, action="mailbox.check", object_type="mailbox", object_id=account.id,
           after={"result": account.last_check_result})


def list_mailboxes(session: Session) -> list[MailboxAccount]:
    return list(session.scalars(select(MailboxAccount).order_by(MailboxAccount.name)))


def parse_zip_list(text: str) -> tuple[set[str], list[str]]:
    """ZIPs from free text (commas, spaces or lines; 12345, 12345-6789 or 123456789) and the bad entries."""
    good, bad = set(), []
    for token in re.split(r"[\s,;]+", text.strip()):
        if not token:
            continue
        digits = token.replace("-", "")
        if re.fullmatch(r"\d{5}|\d{9}", digits) and (token.count("-") == 0 or re.fullmatch(r"\d{5}-\d{4}", token)):
            good.add(digits)
        else:
            bad.append(token)
    return good, bad


def set_district_zips(session: Session, text: str, *, actor_id: int | None) -> set[str]:
    """Replace the office's ZIP list; a list with any unreadable entry is refused whole."""
    zips, bad = parse_zip_list(text)
    if bad:
        shown = ", ".join(bad[:10]) + (" …" if len(bad) > 10 else "")
        raise ValidationFailed(f"not ZIP codes (use 12345 or 12345-6789): {shown}")
    before = district_zips(session)
    session.execute(delete(DistrictZip))
    session.add_all(DistrictZip(zip=z) for z in sorted(zips))
    session.flush()
    record(session, actor_id=actor_id, action="district_zips.set", object_type="office", object_id="district_zips",
           before={"count": len(before), "removed": sorted(before - zips)[:200]},
           after={"count": len(zips), "added": sorted(zips - before)[:200]})
    return zips


def district_zips(session: Session) -> set[str]:
    return set(session.scalars(select(DistrictZip.zip)))
