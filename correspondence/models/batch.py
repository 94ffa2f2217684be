"""Batches: campaign copies of one template, answered together."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from correspondence.models.base import Base, UTCDateTime, utcnow
from correspondence.models.message import Stance, _enum
from correspondence.models.staffer import Staffer
from correspondence.models.topic import Topic


class BatchStatus(enum.StrEnum):
    OPEN = "open"
    LETTER_PENDING = "letter_pending"  # a letter for it is waiting for approval (drafting)
    ANSWERED = "answered"
    NOT_CAMPAIGN = "not_campaign"  # a person said these are not copies of one letter
    MERGED = "merged"  # folded into another batch (merged_into_id)


class Batch(Base):
    __tablename__ = "batches"
    __table_args__ = (Index("ix_batches_status_count", "status", "member_count"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    # The consensus of the members: the sentences most of them share, in their usual order.
    template_text: Mapped[str] = mapped_column(Text, default="")
    template_shingles: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[BatchStatus] = mapped_column(_enum(BatchStatus, "batch_status"), default=BatchStatus.OPEN)
    topic_id: Mapped[int | None] = mapped_column(ForeignKey("topics.id"))
    stance: Mapped[Stance | None] = mapped_column(_enum(Stance, "batch_stance"))
    # What the template itself says (oppose / support ...) when no member carries a stance: shown as a
    # suggestion until a person confirms it, which sets ``stance`` through the audited service.
    suggested_stance: Mapped[Stance | None] = mapped_column(_enum(Stance, "batch_suggested_stance"))
    # Who is behind the campaign, and how that was found (cwc, footer, link, subject).
    source: Mapped[str | None] = mapped_column(String(300))
    source_kind: Mapped[str | None] = mapped_column(String(20))
    campaign_id: Mapped[str | None] = mapped_column(String(200))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"))
    member_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    topic: Mapped[Topic | None] = relationship()
    assignee: Mapped[Staffer | None] = relationship()


class BatchShingle(Base):
    """The template's word 3-grams (signed 64-bit hashes): the index new letters are joined by."""

    __tablename__ = "batch_shingles"
    __table_args__ = (Index("ix_batch_shingles_shingle", "shingle", "batch_id"),)

    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True)
    shingle: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)


class ProposalStatus(enum.StrEnum):
    OPEN = "open"  # listed on the batch page under "Possibly part of this campaign"
    ADDED = "added"  # a person added the letter to the batch
    REJECTED = "rejected"  # a person said it is not part of it: never proposed or joined again


class BatchProposal(Base):
    """A letter that nearly matches a batch (just below the join threshold), for a person to decide.

    One row per (batch, letter) pair, ever: a rejected pair keeps its row, which is how clustering and
    the online join know never to propose or place that letter in that batch again.
    """

    __tablename__ = "batch_proposals"
    # The batch page lists a batch's open proposals best first; the join looks a letter's rejections up.
    __table_args__ = (Index("ix_batch_proposals_batch_status_score", "batch_id", "status", "score"),
                      Index("ix_batch_proposals_message", "message_id"))

    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    score: Mapped[float] = mapped_column(Float)
    # Which stage found it ("words": shared word 3-grams; later "meaning": the semantic stage).
    stage: Mapped[str] = mapped_column(String(20), default="words")
    status: Mapped[ProposalStatus] = mapped_column(_enum(ProposalStatus, "batch_proposal_status"),
                                                   default=ProposalStatus.OPEN)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
