"""In-app notices to one staffer (a letter approved, changes asked for) and approval delegations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from correspondence.models.base import Base, UTCDateTime, utcnow
from correspondence.models.staffer import Staffer


class Notice(Base):
    """Something a staffer should know about their own work; only they see it."""

    __tablename__ = "notices"
    # The nav badge on every page: "unread notices of this staffer", and their newest first.
    __table_args__ = (Index("ix_notices_staffer_read", "staffer_id", "read_at", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    staffer_id: Mapped[int] = mapped_column(ForeignKey("staffers.id"))
    kind: Mapped[str] = mapped_column(String(40))  # e.g. "letter.approved", "letter.changes_requested"
    text: Mapped[str] = mapped_column(String(500))
    link: Mapped[str] = mapped_column(String(500), default="")  # a path inside Mailroom, e.g. /letters/versions/7
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when the email copy was accepted by the SMTP server (only when SMTP is configured).
    emailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApprovalDelegation(Base):
    """A supervisor's approval authority lent to a staffer for a time (while the supervisor is away).

    Active from starts_at (inclusive) to ends_at (exclusive), unless ended early (ended_at).
    """

    __tablename__ = "approval_delegations"
    # "Is this staffer an approval delegate right now?", asked on the approval routes and the nav.
    __table_args__ = (Index("ix_approval_delegations_delegate", "delegate_id", "ends_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    supervisor_id: Mapped[int] = mapped_column(ForeignKey("staffers.id"))
    delegate_id: Mapped[int] = mapped_column(ForeignKey("staffers.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_by_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))

    supervisor: Mapped[Staffer] = relationship(foreign_keys=[supervisor_id])
    delegate: Mapped[Staffer] = relationship(foreign_keys=[delegate_id])
