"""Constituents: the people who write to the office, with every address they use."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from correspondence.models.base import Base, UTCDateTime, utcnow


class DistrictStatus(enum.StrEnum):
    IN_DISTRICT = "in_district"
    OUT_OF_DISTRICT = "out_of_district"
    UNKNOWN = "unknown"


class Constituent(Base):
    __tablename__ = "constituents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prefix: Mapped[str | None] = mapped_column(String(60))
    first_name: Mapped[str | None] = mapped_column(String(100))
    middle_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100), index=True)
    suffix: Mapped[str | None] = mapped_column(String(30))
    address1: Mapped[str | None] = mapped_column(String(200))
    address2: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[str | None] = mapped_column(String(2))
    zip5: Mapped[str | None] = mapped_column(String(5), index=True)
    zip4: Mapped[str | None] = mapped_column(String(4))
    district_status: Mapped[DistrictStatus] = mapped_column(
        Enum(DistrictStatus, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e],
             create_constraint=True, name="district_status"),
        default=DistrictStatus.UNKNOWN,
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when this record was merged into another; everything it held moved there (undoable).
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("constituents.id"), index=True)

    emails: Mapped[list[ConstituentEmail]] = relationship(
        back_populates="constituent", cascade="all, delete-orphan", order_by="ConstituentEmail.id"
    )
    phones: Mapped[list[ConstituentPhone]] = relationship(
        back_populates="constituent", cascade="all, delete-orphan", order_by="ConstituentPhone.id"
    )
    tags: Mapped[list[ConstituentTag]] = relationship(
        back_populates="constituent", cascade="all, delete-orphan", order_by="ConstituentTag.tag"
    )

    @property
    def full_name(self) -> str:
        parts = [self.first_name, self.middle_name, self.last_name, self.suffix]
        return " ".join(p for p in parts if p) or "(no name)"

    @property
    def primary_email(self) -> str | None:
        return self.emails[0].address if self.emails else None


class ConstituentEmail(Base):
    __tablename__ = "constituent_emails"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    constituent_id: Mapped[int] = mapped_column(ForeignKey("constituents.id", ondelete="CASCADE"), index=True)
    # Stored lower-cased so matching an incoming address is an index lookup.
    address: Mapped[str] = mapped_column(String(320), unique=True)
    constituent: Mapped[Constituent] = relationship(back_populates="emails")


class ConstituentPhone(Base):
    __tablename__ = "constituent_phones"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    constituent_id: Mapped[int] = mapped_column(ForeignKey("constituents.id", ondelete="CASCADE"), index=True)
    # E.164 form, e.g. +12025550143.
    number: Mapped[str] = mapped_column(String(20), index=True)
    constituent: Mapped[Constituent] = relationship(back_populates="phones")


class ConstituentTag(Base):
    """A label staff give a person ("veteran", "small business owner", "press"); segments filter on it."""

    __tablename__ = "constituent_tags"
    __table_args__ = (UniqueConstraint("constituent_id", "tag"),
                      Index("ix_constituent_tags_tag", "tag", "constituent_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    constituent_id: Mapped[int] = mapped_column(ForeignKey("constituents.id", ondelete="CASCADE"))
    tag: Mapped[str] = mapped_column(String(60))
    constituent: Mapped[Constituent] = relationship(back_populates="tags")
