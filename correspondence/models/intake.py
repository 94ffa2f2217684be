"""Intake sources: API tokens, IMAP mailboxes, the district ZIP list, and where each source left off."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from correspondence.models.base import Base, UTCDateTime, utcnow


class IntakeToken(Base):
    """A per-source API token; only its SHA-256 is stored, the token is shown once."""

    __tablename__ = "intake_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class IntakeCursor(Base):
    """Where an intake source left off (e.g. an IMAP folder's UIDVALIDITY and last stored UID)."""

    __tablename__ = "intake_cursors"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class MailboxAccount(Base):
    """An IMAP mailbox the office polls, added in the intake sources page.

    The password is kept encrypted with a key derived from the instance's secret key
    (correspondence.secrets), never in plain text and never shown again after saving.
    """

    __tablename__ = "mailbox_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer, default=993)
    # "ssl" (IMAPS), "starttls" or "none" (loopback and tests only).
    security: Mapped[str] = mapped_column(String(10), default="ssl")
    username: Mapped[str] = mapped_column(String(255))
    password_encrypted: Mapped[str] = mapped_column(String(1000))
    folders: Mapped[list[Any]] = mapped_column(JSON, default=lambda: ["INBOX"])
    processed_folder: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_check_result: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # "password" or "oauth2" (Microsoft 365 / Google / another provider: correspondence.services.mailbox_oauth).
    # For oauth2 only the refresh token is kept, encrypted; password_encrypted is then empty.
    auth_kind: Mapped[str] = mapped_column(String(10), default="password", server_default="password")
    oauth_provider: Mapped[str | None] = mapped_column(String(20))
    oauth_client_id: Mapped[str | None] = mapped_column(String(255))
    oauth_token_url: Mapped[str | None] = mapped_column(String(500))
    oauth_client_secret_encrypted: Mapped[str | None] = mapped_column(String(1000))
    refresh_token_encrypted: Mapped[str | None] = mapped_column(String(8000))


class DistrictZip(Base):
    """One of the office's ZIP codes (5 digits) or ZIP+4 codes (9 digits), edited in the UI."""

    __tablename__ = "district_zips"

    zip: Mapped[str] = mapped_column(String(9), primary_key=True)
