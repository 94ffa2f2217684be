"""The mass-communication (franking) guard's records: election dates and advisory-opinion approvals."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from correspondence.models.base import Base, UTCDateTime, utcnow
from correspondence.models.message import _enum


class ElectionKind(enum.StrEnum):
    PRIMARY = "primary"
    GENERAL = "general"
    SPECIAL = "special"
    RUNOFF = "runoff"


class Election(Base):
    """An election day the office entered; unsolicited mass communications may not start in the window
    before it (outbound.franking.blackouts)."""

    __tablename__ = "elections"
    __table_args__ = (UniqueConstraint("kind", "election_date", name="uq_elections_kind_date"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[ElectionKind] = mapped_column(_enum(ElectionKind, "election_kind"))
    election_date: Mapped[date] = mapped_column(Date, index=True)
    note: Mapped[str | None] = mapped_column(String(200))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MassMailApproval(Base):
    """A recorded advisory opinion allowing one letter (all its versions) to go out as an unsolicited mass
    communication above the threshold in one legislative year (``year_start``: its 3 January)."""

    __tablename__ = "mass_mail_approvals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    letter_id: Mapped[int] = mapped_column(ForeignKey("form_letters.id"), index=True)
    year_start: Mapped[date] = mapped_column(Date)
    opinion_number: Mapped[str] = mapped_column(String(100))
    opinion_date: Mapped[date] = mapped_column(Date)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
