"""What happens to a letter after the SMTP server said 250: bounces, complaints and suppressed addresses."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from correspondence.models.base import Base, UTCDateTime, utcnow
from correspondence.models.message import _enum


class SuppressionReason(enum.StrEnum):
    """Why no more email goes to an address, strongest first (a stronger reason replaces a weaker one)."""

    COMPLAINT = "complaint"  # the person reported our mail as spam (ARF, RFC 5965)
    INVALID = "invalid"  # a hard bounce (5.x.x), or soft bounces up to the threshold
    UNSUBSCRIBED = "unsubscribed"  # one-click unsubscribe (RFC 8058) from follow-ups and newsletters


STRENGTH = {SuppressionReason.COMPLAINT: 3, SuppressionReason.INVALID: 2, SuppressionReason.UNSUBSCRIBED: 1}


class Suppression(Base):
    """One email address's delivery standing; ``reason`` None means mail goes to it (restored, or soft bounces
    below the threshold). Keyed by the lower-cased address, so it holds for constituents and strangers alike."""

    __tablename__ = "email_suppressions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(320), unique=True)
    reason: Mapped[SuppressionReason | None] = mapped_column(_enum(SuppressionReason, "suppression_reason"))
    # The server's words (DSN diagnostic), the complaint's feedback type, or "one-click unsubscribe".
    detail: Mapped[str | None] = mapped_column(String(500))
    since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    soft_bounces: Mapped[int] = mapped_column(Integer, default=0)
    last_bounce_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class BounceKind(enum.StrEnum):
    HARD = "hard"
    SOFT = "soft"
    COMPLAINT = "complaint"


class BounceState(enum.StrEnum):
    APPLIED = "applied"  # matched to a response and its address's standing updated
    QUARANTINED = "quarantined"  # could not be parsed or matched: kept with the reason for a person


class Bounce(Base):
    """One delivery report received (DSN, non-standard bounce or ARF complaint), stored raw first."""

    __tablename__ = "bounces"
    __table_args__ = (
        # The quarantine list: newest first among the ones a person must look at.
        Index("ix_bounces_state_received", "state", "received_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The report's Message-ID, else the SHA-256 of its bytes: the same report twice changes nothing twice.
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    raw_sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"))
    source: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    state: Mapped[BounceState] = mapped_column(_enum(BounceState, "bounce_state"))
    kind: Mapped[BounceKind | None] = mapped_column(_enum(BounceKind, "bounce_kind"))
    response_id: Mapped[int | None] = mapped_column(ForeignKey("responses.id"), index=True)
    address: Mapped[str | None] = mapped_column(String(320))
    # RFC 3463 status ("5.1.1") when the report has one.
    status: Mapped[str | None] = mapped_column(String(20))
    diagnostic: Mapped[str | None] = mapped_column(String(500))
    # Why a quarantined report could not be used.
    reason: Mapped[str | None] = mapped_column(String(500))
