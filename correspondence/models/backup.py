"""Backups made (`mailroom backup`, the daily job) and whole-office exports made from the admin page."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from correspondence.models.base import Base, UTCDateTime, utcnow
from correspondence.models.run import RunState, run_state_type
from correspondence.models.staffer import Staffer


class BackupRecord(Base):
    """One backup attempt, kept whether it worked or not: the dashboard reads the last good one.

    The record is written after the snapshot is taken, so a snapshot never holds its own record.
    """

    __tablename__ = "backup_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Serves "the last successful backup" (dashboard): ok first, then the newest.
    ok: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    # "command" (mailroom backup) or "schedule" (the daily job).
    made_by: Mapped[str] = mapped_column(String(20), default="command")
    database_kind: Mapped[str] = mapped_column(String(20), default="")
    # The snapshot's folder name under the backup folder, and the backup folder itself.
    snapshot: Mapped[str] = mapped_column(String(100), default="")
    destination: Mapped[str] = mapped_column(String(500), default="")
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    blob_files_copied: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(String(1000))


class ExportRun(Base):
    """An "Export all data" asked for on the admin page: the archive is made by a job and kept as a .tar.gz."""

    __tablename__ = "export_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[RunState] = mapped_column(run_state_type(), default=RunState.QUEUED)
    progress: Mapped[int] = mapped_column(Integer, default=0)  # percent
    # What the export holds (rows, tables, blob files) once it is done.
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    file_name: Mapped[str | None] = mapped_column(String(200))
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    error: Mapped[str | None] = mapped_column(String(500))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    created_by: Mapped[Staffer | None] = relationship()
