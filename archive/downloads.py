"""Files that hold people's data are kept for a while, not forever.

A whole-office export (a .tar.gz in <instance>/exports) and a subject access ZIP (a blob) are copies made to
be taken away: once downloaded they are wherever the person put them, and a copy left on the server is one
more place everything about a person can leak from. After ``KEEP_DAYS`` days the daily job deletes them; the
row stays (who asked, when, how big) with the file gone, the page says so and offers to make a new one, and
each deletion is an audit event. An export that has not finished, or failed, is left to the sweep.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from archive.unreferenced import drop_unreferenced
from correspondence.models import ExportRun, RunState, SubjectAccessExport, utcnow
from correspondence.services.audit import record

KEEP_DAYS = 30


@dataclass(frozen=True)
class Expired:
    exports: int
    access_zips: int
    files: list[Path]  # export files to delete once the rows are committed


def expire_downloads(session: Session, *, now: datetime | None = None, keep_days: int = KEEP_DAYS) -> Expired:
    """Forget the files of exports and access ZIPs finished more than `keep_days` ago. The caller commits,
    then deletes `files` (a file is never deleted while a committed row still names it)."""
    cutoff = (now or utcnow()) - timedelta(days=keep_days)
    runs = list(session.scalars(select(ExportRun).where(ExportRun.state == RunState.DONE,
                                                        ExportRun.file_name.is_not(None),
                                                        ExportRun.finished_at < cutoff)))
    files = []
    for run in runs:
        files.append(Path(run.file_name or ""))
        record(session, actor_id=None, action="export.expire", object_type="export_run", object_id=run.id,
               before={"file_name": run.file_name}, detail=f"deleted after {keep_days} days")
        run.file_name = None
    zips = list(session.scalars(select(SubjectAccessExport).where(SubjectAccessExport.state == RunState.DONE,
                                                                  SubjectAccessExport.sha256.is_not(None),
                                                                  SubjectAccessExport.finished_at < cutoff)))
    digests = []
    for export in zips:
        digests.append(export.sha256 or "")
        record(session, actor_id=None, action="subject_access.expire", object_type="constituent",
               object_id=export.constituent_id, after={"export_id": export.id},
               detail=f"the ZIP was deleted after {keep_days} days")
        export.sha256 = None
    drop_unreferenced(session, digests)
    return Expired(len(runs), len(zips), files)


def delete_files(exports_dir: Path, files: list[Path]) -> int:
    """After the commit: delete the expired export files (names made by Mailroom, inside exports_dir only)."""
    deleted = 0
    for name in files:
        path = exports_dir / name.name
        if path.is_file():
            path.unlink()
            deleted += 1
    return deleted
