"""Casework: a constituent's problem followed through a federal agency, step by step."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Enum, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from correspondence.models.base import Base, UTCDateTime, utcnow
from correspondence.models.constituent import Constituent
from correspondence.models.staffer import Staffer


class CaseStatus(enum.StrEnum):
    OPEN = "open"
    WAITING_ON_CONSTITUENT = "waiting_on_constituent"
    WAITING_ON_AGENCY = "waiting_on_agency"
    RESOLVED = "resolved"
    CLOSED = "closed"


class CasePriority(enum.StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class StepKind(enum.StrEnum):
    RELEASE = "release"  # receive the signed privacy release
    INQUIRY = "inquiry"  # send the inquiry to the agency: needs the release on file
    AGENCY_RESPONSE = "agency_response"
    INFORM = "inform"  # tell the constituent
    CLOSE = "close"
    TASK = "task"


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(cls, native_enum=False, length=30, values_callable=lambda e: [m.value for m in e],
                create_constraint=True, name=name)


class CaseCategory(Base):
    """A kind of case (Social Security, Passports, …) and the steps a new case of it starts with."""

    __tablename__ = "case_categories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # [{"title": "...", "kind": "release", "days": 7}, ...]: days from the previous step's due date.
    steps: Mapped[list[Any]] = mapped_column(JSON, default=list)


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (Index("ix_cases_caseworker_status", "caseworker_id", "status", "opened_at"),
                      Index("ix_cases_constituent", "constituent_id", "opened_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    constituent_id: Mapped[int] = mapped_column(ForeignKey("constituents.id"))
    category_id: Mapped[int] = mapped_column(ForeignKey("case_categories.id"))
    subject: Mapped[str] = mapped_column(String(300))
    agency: Mapped[str | None] = mapped_column(String(200))
    agency_contact: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[CaseStatus] = mapped_column(_enum(CaseStatus, "case_status"), default=CaseStatus.OPEN)
    priority: Mapped[CasePriority] = mapped_column(_enum(CasePriority, "case_priority"), default=CasePriority.NORMAL)
    caseworker_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(Text)
    # The privacy release: when it was received, the signed document (a blob), how it was signed,
    # and for an electronic signature the typed name, time and IP address.
    release_received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    release_sha256: Mapped[str | None] = mapped_column(ForeignKey("blobs.sha256"))
    release_method: Mapped[str | None] = mapped_column(String(20))  # "upload" or "e_signature"
    release_signature: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    source_message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    # The constituent agreed that this case may pass to the successor office when this one closes
    # (archive/closing.py): when, and which staffer recorded it. None: no consent, the case never leaves.
    transfer_consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    transfer_consent_by_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))

    constituent: Mapped[Constituent] = relationship()
    category: Mapped[CaseCategory] = relationship()
    caseworker: Mapped[Staffer | None] = relationship(foreign_keys=[caseworker_id])


class CaseStep(Base):
    __tablename__ = "case_steps"
    __table_args__ = (Index("ix_case_steps_assignee_due", "assignee_id", "done_at", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    kind: Mapped[StepKind] = mapped_column(_enum(StepKind, "step_kind"), default=StepKind.TASK)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_by_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))

    assignee: Mapped[Staffer | None] = relationship(foreign_keys=[assignee_id])


class CaseNote(Base):
    __tablename__ = "case_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    author: Mapped[Staffer | None] = relationship()


class CaseDocument(Base):
    __tablename__ = "case_documents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    is_release: Mapped[bool] = mapped_column(Boolean, default=False)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class HelpRequest(Base):
    """A request from the public help form, kept apart from what staff know until it is proven.

    The case it opened sits on a constituent record of its own, made from what the person typed. When
    the email (or phone) is already on file for someone, that person is only a *possible match* until a
    caseworker confirms it. The typed signature counts as a privacy release only once the signer has
    followed the one-time link emailed to the address, and the signed name matches the record's name.
    """

    __tablename__ = "help_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), unique=True)
    # What the person is told: random, never the sequential case id.
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    # The form's single-use key: a refresh or a resubmission finds this row instead of making a new case.
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(30))
    typed_name: Mapped[str] = mapped_column(String(200))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ip: Mapped[str | None] = mapped_column(String(64))
    # Someone already on file with this email or phone; "pending" until a caseworker decides.
    possible_match_id: Mapped[int | None] = mapped_column(ForeignKey("constituents.id"))
    match_state: Mapped[str] = mapped_column(String(20), default="none", server_default="none")
    # What the possible match shares with the request: "email", or "phone" only (then the proven email
    # says nothing about that person, so the online signature cannot be their release).
    match_by: Mapped[str | None] = mapped_column(String(8))
    match_decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    match_decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The email proof: only the SHA-256 of the one-time token is kept, with its expiry.
    email_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    email_token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    email_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    email_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    case: Mapped[Case] = relationship()
    possible_match: Mapped[Constituent | None] = relationship(foreign_keys=[possible_match_id])
