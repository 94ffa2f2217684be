"""Legal holds, retention rules and runs, subject access exports, erasures: what the office keeps, how long."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from correspondence.models.base import Base, UTCDateTime, utcnow
from correspondence.models.run import RunState, run_state_type


class LegalHold(Base):
    """A hold on a constituent, a case or a batch: while it is in force nothing under it is removed
    (retention skips it, erasure refuses). Released holds stay as the record of who held what and why."""

    __tablename__ = "legal_holds"
    # "Is this held?" for one object, and for a list of objects, reads only this index.
    __table_args__ = (Index("ix_legal_holds_object", "object_type", "object_id", "released_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    object_type: Mapped[str] = mapped_column(String(20))  # "constituent", "case" or "batch"
    object_id: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(500))
    placed_by_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    released_by_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    release_reason: Mapped[str | None] = mapped_column(String(500))


class RetentionRule(Base):
    """How long the office keeps one kind of record, and what happens to it then (archive.retention.KINDS)."""

    __tablename__ = "retention_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(30), unique=True)
    years: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class RetentionRun(Base):
    """One pass of the retention rules (or its dry run), run as a job; result holds the counts per rule."""

    __tablename__ = "retention_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=True)
    state: Mapped[RunState] = mapped_column(run_state_type(), default=RunState.QUEUED)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(String(500))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SubjectAccessExport(Base):
    """Everything held about one constituent as a ZIP, built by a job; the ZIP is a blob."""

    __tablename__ = "subject_access_exports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    constituent_id: Mapped[int] = mapped_column(ForeignKey("constituents.id"), index=True)
    state: Mapped[RunState] = mapped_column(run_state_type(), default=RunState.QUEUED)
    sha256: Mapped[str | None] = mapped_column(ForeignKey("blobs.sha256"))
    size: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Erasure(Base):
    """That a constituent's record was erased: who, when, why and how much. Never what was erased."""

    __tablename__ = "erasures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    constituent_id: Mapped[int] = mapped_column(ForeignKey("constituents.id"), unique=True)
    reason: Mapped[str] = mapped_column(String(500))
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    erased_by_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
