"""Subscription lists, who is on them and how they came to be (provenance), and newsletters sent to them."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from correspondence.models.base import Base, UTCDateTime, utcnow
from correspondence.models.message import _enum


class SubscriptionStatus(enum.StrEnum):
    PENDING = "pending"  # signed up on the public page, the confirmation link not yet followed
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"


class SubscriptionSource(enum.StrEnum):
    """How the person came onto the list: the provenance a newsletter's exemption rests on."""

    CWC = "cwc"  # a CWC delivery's NewsletterOptIn
    WEBFORM = "webform"  # the web form's newsletter_opt_in field
    SIGNUP = "signup"  # the public sign-up page, confirmed by email (double opt-in)
    IMPORT = "import"  # a CSV import, with the legal basis stated by the staffer
    STAFF = "staff"  # a staffer added them (e.g. asked in person or by phone)


class SubscriptionList(Base):
    __tablename__ = "subscription_lists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(String(1000))
    # Shown on the public sign-up page; a hidden list can only be joined by staff, imports and opt-ins.
    public: Mapped[bool] = mapped_column(default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Subscription(Base):
    """One address on one list. Keyed by the lower-cased address (a sign-up need not be a known
    constituent); ``constituent_id`` is set when the address is on a record."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        UniqueConstraint("list_id", "address", name="uq_subscriptions_list_address"),
        # A newsletter walks the list's subscribed addresses in id order.
        Index("ix_subscriptions_list_status", "list_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("subscription_lists.id"))
    address: Mapped[str] = mapped_column(String(320), index=True)
    constituent_id: Mapped[int | None] = mapped_column(ForeignKey("constituents.id"), index=True)
    status: Mapped[SubscriptionStatus] = mapped_column(_enum(SubscriptionStatus, "subscription_status"))
    source: Mapped[SubscriptionSource] = mapped_column(_enum(SubscriptionSource, "subscription_source"))
    # The stated legal basis / evidence of consent ("opted in on the CWC delivery cwc:123", "CSV: town hall
    # sign-in sheet, 2026-05-02"), kept as the person's words of record.
    legal_basis: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    subscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Newsletter(Base):
    """One approved letter version sent to a list (or a segment) by an apply-to-all run."""

    __tablename__ = "newsletters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("letter_versions.id"))
    list_id: Mapped[int | None] = mapped_column(ForeignKey("subscription_lists.id"), index=True)
    segment_id: Mapped[int | None] = mapped_column(ForeignKey("segments.id"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("apply_runs.id"))
    # The public web version's address (/n/<token>): random, unguessable.
    web_token: Mapped[str] = mapped_column(String(64), unique=True)
    # The web version as it was sent, rendered once without any one person's details.
    subject: Mapped[str] = mapped_column(String(500))
    body_text: Mapped[str] = mapped_column(Text)
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
