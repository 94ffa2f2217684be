"""The paragraph library: standard paragraphs a writer inserts into a letter, each with revisions under approval."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from correspondence.models.base import Base, UTCDateTime, utcnow
from correspondence.models.message import _enum
from correspondence.models.staffer import Staffer
from correspondence.models.topic import Topic


class ParagraphState(enum.StrEnum):
    PROPOSED = "proposed"  # written, waiting for a supervisor
    APPROVED = "approved"  # the text writers insert; at most one revision per paragraph
    RETIRED = "retired"  # was approved; replaced by a newer revision or the paragraph was retired
    WITHDRAWN = "withdrawn"  # a proposal that was never approved (withdrawn by its author or declined)


class StandardParagraph(Base):
    """One standard paragraph of the office (title and topic); its words live in its revisions."""

    __tablename__ = "standard_paragraphs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    # None: a general paragraph, offered whatever the letter's topic.
    topic_id: Mapped[int | None] = mapped_column(ForeignKey("topics.id"), index=True)
    retired: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    topic: Mapped[Topic | None] = relationship()
    revisions: Mapped[list[ParagraphRevision]] = relationship(back_populates="paragraph",
                                                              order_by="ParagraphRevision.number")


class ParagraphRevision(Base):
    __tablename__ = "paragraph_revisions"
    __table_args__ = (
        UniqueConstraint("paragraph_id", "number"),
        # "Is this piece of a letter an approved paragraph?" (drafting.paragraphs.built_from_approved)
        # looks approved texts up by the hash of their normalised text.
        Index("ix_paragraph_revisions_state_sha", "state", "text_sha256"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    paragraph_id: Mapped[int] = mapped_column(ForeignKey("standard_paragraphs.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    # One paragraph in Jinja2 letter syntax (no blank lines), normalised: LF line ends, no trailing spaces.
    text: Mapped[str] = mapped_column(Text)
    text_sha256: Mapped[str] = mapped_column(String(64))
    state: Mapped[ParagraphState] = mapped_column(_enum(ParagraphState, "paragraph_state"),
                                                  default=ParagraphState.PROPOSED)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    based_on_id: Mapped[int | None] = mapped_column(ForeignKey("paragraph_revisions.id"))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    paragraph: Mapped[StandardParagraph] = relationship(back_populates="revisions")
    author: Mapped[Staffer | None] = relationship(foreign_keys=[author_id])
    decided_by: Mapped[Staffer | None] = relationship(foreign_keys=[decided_by_id])
