"""Saved constituent segments, CSV imports and activity reports: the constituent record's office tools."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from correspondence.models.base import Base, UTCDateTime, utcnow
from correspondence.models.run import RunState, run_state_type


class Segment(Base):
    """A saved filter on constituents (ZIP, city, district, topics, stance, batch, activity, tags)."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # The filter as plain data: see constituents.segments.SegmentFilter.
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ConstituentImport(Base):
    """One uploaded CSV of constituents: kept as a file, mapped by a person, then imported by a job."""

    __tablename__ = "constituent_imports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    filename: Mapped[str] = mapped_column(String(300))
    source_sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"))
    encoding: Mapped[str] = mapped_column(String(30))
    columns: Mapped[list[Any]] = mapped_column(JSON, default=list)
    mapping: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # column index (as text) -> field name
    tag: Mapped[str | None] = mapped_column(String(60))  # given to every imported person, e.g. "town hall 2026"
    state: Mapped[RunState] = mapped_column(run_state_type(), default=RunState.UPLOADED)
    total_rows: Mapped[int] = mapped_column(Integer, default=0)
    done_rows: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    matched: Mapped[int] = mapped_column(Integer, default=0)
    bad: Mapped[int] = mapped_column(Integer, default=0)
    bad_rows_sha256: Mapped[str | None] = mapped_column(ForeignKey("blobs.sha256"))
    error: Mapped[str | None] = mapped_column(String(500))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ReportRun(Base):
    """An activity report over a date range (and optionally a segment), computed by a job for long ranges."""

    __tablename__ = "report_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[RunState] = mapped_column(run_state_type(), default=RunState.QUEUED)
    progress: Mapped[int] = mapped_column(Integer, default=0)  # percent
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(String(500))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AnalyticsSnapshot(Base):
    """The dashboard's charts, computed by a job (insight.analytics) and read by the page."""

    __tablename__ = "analytics_snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    days: Mapped[int] = mapped_column(Integer, default=90)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
