"""Messages: every piece of correspondence in or out, with its triage state."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Enum, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from correspondence.models.base import Base, UTCDateTime, utcnow
from correspondence.models.constituent import Constituent
from correspondence.models.staffer import Staffer
from correspondence.models.topic import Topic


class Channel(enum.StrEnum):
    EMAIL = "email"
    WEBFORM = "webform"
    CWC = "cwc"
    POSTAL = "postal"
    PHONE = "phone"
    SOCIAL = "social"
    WALK_IN = "walk_in"

    @property
    def label(self) -> str:
        return _CHANNEL_LABELS.get(self.value, self.value)


_CHANNEL_LABELS = {"email": "Email", "webform": "Web form", "cwc": "CWC", "postal": "Postal mail", "phone": "Phone",
                   "social": "Social media", "walk_in": "Walk-in"}


class Direction(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class Stance(enum.StrEnum):
    SUPPORT = "support"
    OPPOSE = "oppose"
    NEUTRAL = "neutral"


class MessageStatus(enum.StrEnum):
    NEW = "new"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    AWAITING_APPROVAL = "awaiting_approval"
    # An answer is rendered and waiting to leave (email queued, letter waiting for its print file).
    ANSWER_QUEUED = "answer_queued"
    RESPONDED = "responded"
    CLOSED = "closed"
    QUARANTINED = "quarantined"
    ARCHIVED = "archived"


OPEN_STATUSES = (
    MessageStatus.NEW,
    MessageStatus.ASSIGNED,
    MessageStatus.IN_PROGRESS,
    MessageStatus.AWAITING_APPROVAL,
)


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(cls, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e],
                create_constraint=True, name=name)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        # The inbox lists newest first within a status, paging by (received_at, id).
        Index("ix_messages_status_received", "status", "received_at", "id"),
        # Covers the backlog dashboard's counts, so they never read a table row.
        Index("ix_messages_assignee_status", "assignee_id", "status", "received_at", "due_at"),
        # Status counts under a channel or topic filter.
        Index("ix_messages_channel_status", "channel", "status"),
        Index("ix_messages_received", "received_at", "id"),
        Index("ix_messages_topic_received", "topic_id", "received_at"),
        Index("ix_messages_topic_status", "topic_id", "status"),
        Index("ix_messages_constituent_received", "constituent_id", "received_at"),
        Index("ix_messages_unprocessed", "processed_at", "created_at"),
        Index("ix_messages_batch_received", "batch_id", "received_at"),
        # Segments: "wrote between these dates" and "wrote about this topic with this stance" read only
        # these indexes, never the table (inbound mail only, the follow-ups we send are not "writing").
        Index("ix_messages_inbound_received_constituent", "received_at", "constituent_id",
              postgresql_where=text("direction = 'inbound'"), sqlite_where=text("direction = 'inbound'")),
        Index("ix_messages_inbound_topic_stance_constituent", "topic_id", "stance", "constituent_id",
              postgresql_where=text("direction = 'inbound'"), sqlite_where=text("direction = 'inbound'")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    channel: Mapped[Channel] = mapped_column(_enum(Channel, "channel"))
    direction: Mapped[Direction] = mapped_column(_enum(Direction, "direction"), default=Direction.INBOUND)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    from_name: Mapped[str | None] = mapped_column(String(200))
    from_address: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(500), default="")
    body_text: Mapped[str] = mapped_column(Text, default="")
    body_html: Mapped[str | None] = mapped_column(Text)  # sanitised with nh3 before it is stored
    raw_sha256: Mapped[str | None] = mapped_column(ForeignKey("blobs.sha256"))
    constituent_id: Mapped[int | None] = mapped_column(ForeignKey("constituents.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    topic_id: Mapped[int | None] = mapped_column(ForeignKey("topics.id"))
    stance: Mapped[Stance | None] = mapped_column(_enum(Stance, "stance"))
    # Who coded the topic: "staff", "delivery" (CWC / web form), "batch", "rule", or "model" (applied
    # automatically above the office's confidence; never used to train the next model).
    topic_source: Mapped[str | None] = mapped_column(String(20))
    # The topic model's suggestions while a message is uncoded:
    # {"model": version, "topics": [[topic_id, p], ...3], "stance": [value, p]}
    suggestions: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    status: Mapped[MessageStatus] = mapped_column(_enum(MessageStatus, "message_status"),
                                                  default=MessageStatus.NEW)
    status_reason: Mapped[str | None] = mapped_column(String(500))
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Where it came from: the adapter key and the source's own id (Message-ID header, CWC DeliveryId).
    source: Mapped[str | None] = mapped_column(String(100))
    external_id: Mapped[str | None] = mapped_column(String(255), index=True)
    # Advocacy campaign facts a delivery carries (CWC, web forms); batching uses them.
    campaign_id: Mapped[str | None] = mapped_column(String(200))
    organization: Mapped[str | None] = mapped_column(String(300))
    organization_statement: Mapped[str | None] = mapped_column(Text)
    delivery_agent: Mapped[str | None] = mapped_column(String(300))
    # Structured facts from the adapter (CWC bills, web-form fields) kept for later stages.
    facts: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # How the constituent was matched ("email", "phone", "name+address", "created") and how sure.
    match_method: Mapped[str | None] = mapped_column(String(30))
    match_confidence: Mapped[float | None] = mapped_column(Float)
    # Campaign batch: the batch, how much of its template the letter holds, the sentences the
    # writer added of their own, and whether a person placed it (re-clustering then leaves it be).
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"))
    batch_similarity: Mapped[float | None] = mapped_column(Float)
    batch_additions: Mapped[list[Any] | None] = mapped_column(JSON(none_as_null=True))
    batch_pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    # What kinds of things the additions are, comma-separated and sorted ("question,request,story"):
    # the batch page's "letters that ask a question" filter.
    batch_addition_kinds: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    constituent: Mapped[Constituent | None] = relationship()
    assignee: Mapped[Staffer | None] = relationship()
    topic: Mapped[Topic | None] = relationship()
