"""Assignment rules: new mail on a topic (or channel) goes to a staffer or, round-robin, to a team."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from correspondence.models.base import Base, UTCDateTime, utcnow
from correspondence.models.topic import Topic


class RoutingRule(Base):
    __tablename__ = "routing_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    # A rule matches a topic, a channel, both, or (neither) everything not matched by another rule.
    topic_id: Mapped[int | None] = mapped_column(ForeignKey("topics.id"))
    channel: Mapped[str | None] = mapped_column(String(20))
    staffer_ids: Mapped[list[int]] = mapped_column(JSON)
    # Round-robin position inside the team: the next message goes to staffer_ids[next_index % len].
    next_index: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    topic: Mapped[Topic | None] = relationship()

    @property
    def specificity(self) -> int:
        return (2 if self.topic_id is not None else 0) + (1 if self.channel else 0)
