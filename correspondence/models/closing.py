"""Closing an office at the end of a term: one record of the guided steps, and who got the closing auto-reply.

Both survive the final purge (archive/closing.py): they hold no constituent's personal data (the auto-reply
list keeps only the SHA-256 of each sender's address, enough to answer each sender once).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from correspondence.models.base import Base, UTCDateTime, utcnow


class OfficeClosing(Base):
    """The office's closing, one row (id 1) made when intake is stopped; each step fills its own columns."""

    __tablename__ = "office_closings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    successor_name: Mapped[str] = mapped_column(String(200))
    # How to reach the successor (office, address, phone, email, web site), shown to the public as plain text.
    successor_contact: Mapped[str] = mapped_column(Text)
    intake_stopped_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    intake_stopped_by_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    # A step a job is doing right now ("final_export", "handover", "purge") and the last step's failure.
    working_on: Mapped[str | None] = mapped_column(String(20))
    last_error: Mapped[str | None] = mapped_column(String(1000))
    final_export_path: Mapped[str | None] = mapped_column(String(1000))
    final_export_manifest_sha256: Mapped[str | None] = mapped_column(String(64))
    final_export_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    final_export_by_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    final_export_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    handover_path: Mapped[str | None] = mapped_column(String(1000))
    handover_manifest_sha256: Mapped[str | None] = mapped_column(String(64))
    handover_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    handover_by_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    handover_counts: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    purged_by_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    purge_counts: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ClosingAutoReply(Base):
    """A sender who was sent the "this office has closed" reply: once per sender, kept by address hash."""

    __tablename__ = "closing_auto_replies"

    address_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The letter that carries it (responses.id); a plain number, as the purge deletes the letters.
    response_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
