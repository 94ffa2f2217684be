"""Webhook subscriptions and their durable outbox of deliveries (the database is the truth, not Redis)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from correspondence.models.base import Base, UTCDateTime, utcnow


class WebhookSubscription(Base):
    """An outside URL that is sent a signed POST when one of its chosen events happens.

    The signing secret is kept encrypted with the instance's secret key (correspondence.secretbox): it must be
    read back to sign, so a hash would not do; it is shown to the admin once, when the subscription is made.
    """

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[Any]] = mapped_column(JSON, default=list)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    deliveries: Mapped[list[WebhookDelivery]] = relationship(
        back_populates="subscription", cascade="all, delete-orphan", passive_deletes=True)


class WebhookDelivery(Base):
    """One event for one subscription: the outbox row the sweep delivers, retries and finally marks failed.

    The body is stored as the exact bytes that are signed and sent, so a retry sends the same thing.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # The sweep's query: undelivered, not given up, due now, oldest first.
        Index("ix_webhook_deliveries_due", "delivered_at", "failed_at", "next_attempt_at"),
        # A subscription's page: its most recent deliveries.
        Index("ix_webhook_deliveries_subscription_created", "subscription_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The id receivers use to ignore a repeat (delivery is at least once).
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    # The start of the receiver's answer (or why there was none), cut short; shown escaped.
    last_response: Mapped[str | None] = mapped_column(String(500))
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    subscription: Mapped[WebhookSubscription] = relationship(back_populates="deliveries")
