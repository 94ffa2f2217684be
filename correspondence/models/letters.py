"""Form letters, their versions under review, and the responses sent with them."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from correspondence.models.base import Base, UTCDateTime, utcnow
from correspondence.models.message import Stance, _enum
from correspondence.models.run import RunState, run_state_type
from correspondence.models.staffer import Staffer
from correspondence.models.topic import Topic


class VersionState(enum.StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    CHANGES_REQUESTED = "changes_requested"
    APPROVED = "approved"
    RETIRED = "retired"


class FormLetter(Base):
    __tablename__ = "form_letters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    topic_id: Mapped[int | None] = mapped_column(ForeignKey("topics.id"))
    stance: Mapped[Stance | None] = mapped_column(_enum(Stance, "letter_stance"))
    tags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # The version letters go out with: the latest approved one.
    current_version_id: Mapped[int | None] = mapped_column(ForeignKey("letter_versions.id", use_alter=True))
    usage_count: Mapped[int] = mapped_column(Integer, default=0)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retired: Mapped[bool] = mapped_column(Boolean, default=False)
    # A one-off reply written for one message (not listed in the library).
    one_off_message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    topic: Mapped[Topic | None] = relationship()
    current_version: Mapped[LetterVersion | None] = relationship(foreign_keys=[current_version_id],
                                                                 post_update=True)


class LetterVersion(Base):
    __tablename__ = "letter_versions"
    __table_args__ = (UniqueConstraint("letter_id", "number"),
                      Index("ix_letter_versions_state_submitted", "state", "submitted_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    letter_id: Mapped[int] = mapped_column(ForeignKey("form_letters.id"))
    number: Mapped[int] = mapped_column(Integer)
    subject: Mapped[str] = mapped_column(String(300), default="")
    # The letter in Jinja2 syntax, rendered in the sandbox with strict undefined fields.
    body: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[VersionState] = mapped_column(_enum(VersionState, "version_state"), default=VersionState.DRAFT)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    based_on_id: Mapped[int | None] = mapped_column(ForeignKey("letter_versions.id"))
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    letter: Mapped[FormLetter] = relationship(foreign_keys=[letter_id])
    author: Mapped[Staffer | None] = relationship(foreign_keys=[author_id])
    decided_by: Mapped[Staffer | None] = relationship(foreign_keys=[decided_by_id])


class ReviewComment(Base):
    __tablename__ = "review_comments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("letter_versions.id"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    paragraph: Mapped[int | None] = mapped_column(Integer)  # 1-based paragraph the comment is about
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    author: Mapped[Staffer | None] = relationship()


class DeliveryMethod(enum.StrEnum):
    EMAIL = "email"
    PRINT = "print"


class ResponseState(enum.StrEnum):
    QUEUED = "queued"  # rendered, waiting for its delivery job
    SENDING = "sending"  # the attempt is recorded; the SMTP conversation may be under way
    SENT = "sent"
    TO_PRINT = "to_print"  # in the run's print file, for the post
    FAILED = "failed"  # the server refused it for good; a person decides
    UNCERTAIN = "uncertain"  # a worker died mid-send: maybe sent; a person decides, never resent blindly


class ApplyRun(Base):
    """One "apply to all": an approved version applied to a batch or a selection, run as a job."""

    __tablename__ = "apply_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("letter_versions.id"))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"))
    message_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    state: Mapped[RunState] = mapped_column(run_state_type(), default=RunState.QUEUED)
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    created_count: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    # What the person chose on the dry run (district, skip_answered_campaign, leave_additions).
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # People in the selection, and how far the run has got through them (the resume point).
    people: Mapped[int] = mapped_column(Integer, default=0)
    people_done: Mapped[int] = mapped_column(Integer, default=0)
    # Letters made (created_count) cover this many messages; messages closed by a skip rule.
    covered: Mapped[int] = mapped_column(Integer, default=0)
    closed: Mapped[int] = mapped_column(Integer, default=0)
    # Messages per dry-run category ("already_answered", "frequent_writer", ...), as the run found them.
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    print_sha256: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    version: Mapped[LetterVersion] = relationship()


class Response(Base):
    """One letter to one person, answering every message of theirs it covers (``ResponseMessage``).

    ``message_id`` is the person's latest message among them: the letter renders with it and an email
    threads In-Reply-To it.
    """

    __tablename__ = "responses"
    __table_args__ = (
        Index("ix_responses_run_state", "run_id", "state"),
        # The no-SMTP banner and the sweeper count queued letters on every page: an index, not a scan.
        Index("ix_responses_state", "state"),
        # The same person never gets the same form letter (any version) twice, even from two runs at once.
        Index("uq_responses_constituent_letter", "constituent_id", "letter_id", unique=True,
              postgresql_where=text("constituent_id IS NOT NULL AND letter_id IS NOT NULL"),
              sqlite_where=text("constituent_id IS NOT NULL AND letter_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), unique=True)
    constituent_id: Mapped[int | None] = mapped_column(ForeignKey("constituents.id"), index=True)
    version_id: Mapped[int | None] = mapped_column(ForeignKey("letter_versions.id"))
    letter_id: Mapped[int | None] = mapped_column(ForeignKey("form_letters.id"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("apply_runs.id"))
    method: Mapped[DeliveryMethod] = mapped_column(_enum(DeliveryMethod, "delivery_method"))
    state: Mapped[ResponseState] = mapped_column(_enum(ResponseState, "response_state"),
                                                 default=ResponseState.QUEUED)
    to_address: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(500), default="")
    body_text: Mapped[str] = mapped_column(Text, default="")
    # Unique per response, so a server or a person can always tell one letter from another.
    email_message_id: Mapped[str] = mapped_column(String(255), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    sending_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    version: Mapped[LetterVersion | None] = relationship()


class ResponseMessage(Base):
    """Which letter answered a message: one row per message, so no message is answered twice."""

    __tablename__ = "response_messages"

    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), primary_key=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("responses.id"), index=True)
