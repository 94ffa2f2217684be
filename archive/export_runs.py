""""Export all data" from the admin page: the same archive as `mailroom export`, made by a job, kept as a .tar.gz.

The job writes the archive into a folder under the exports folder, reporting progress per table, then packs it
into one .tar.gz (what the page offers for download) and removes the folder. Every step is audited: who asked,
when it ran, finished or failed, and each download.
"""

from __future__ import annotations

import shutil
import tarfile
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from archive.export import export_archive
from archive.tables import archived_tables
from correspondence.db import Database
from correspondence.effects import Done, Effect
from correspondence.errors import NotFound, ValidationFailed
from correspondence.models import ExportRun, RunState, utcnow
from correspondence.services.audit import record
from correspondence.states import run_machine

EXPORTS = run_machine("export_run", "export")
WAITING = (RunState.QUEUED, RunState.RUNNING)


def queue_export(session: Session, *, actor_id: int) -> Done[ExportRun]:
    """Ask for a whole-office export (one at a time: a waiting or running one is returned instead)."""
    waiting = session.scalars(select(ExportRun).where(ExportRun.state.in_(WAITING))
                              .order_by(ExportRun.id.desc()).limit(1)).first()
    if waiting is not None:
        return Done(waiting, (Effect.of("export", waiting.id),))
    run = ExportRun(created_by_id=actor_id, state=RunState.QUEUED)
    session.add(run)
    session.flush()
    record(session, actor_id=actor_id, action="export.start", object_type="export_run", object_id=run.id)
    return Done(run, (Effect.of("export", run.id),))


def get_export(session: Session, run_id: int) -> ExportRun:
    run = session.get(ExportRun, run_id)
    if run is None:
        raise NotFound(f"no export {run_id}")
    return run


def recent_exports(session: Session, limit: int = 10) -> list[ExportRun]:
    return list(session.scalars(select(ExportRun).order_by(ExportRun.id.desc()).limit(limit)))


def export_path(exports_dir: Path, run: ExportRun) -> Path:
    """The finished export's file (named by the run, never by anything a person typed)."""
    if run.state != RunState.DONE or not run.file_name:
        raise NotFound("this export is not ready")
    path = exports_dir / run.file_name
    if not path.is_file():
        raise NotFound("this export's file is no longer on the server; make a new export")
    return path


def record_download(session: Session, run_id: int, *, actor_id: int) -> ExportRun:
    """Audit that someone took a copy of the whole office's data."""
    run = get_export(session, run_id)
    record(session, actor_id=actor_id, action="export.download", object_type="export_run", object_id=run.id,
           after={"file": run.file_name})
    return run


def execute_export(db: Database, run_id: int, exports_dir: Path) -> None:
    """The job: export, pack, record. Running it twice is safe: a finished export is left alone, and an
    interrupted one starts again from an empty folder."""
    with db.unit_of_work() as s:
        run = get_export(s, run_id)
        if run.state == RunState.DONE:
            return
        EXPORTS.move(s, run, RunState.RUNNING, actor_id=None, action="export.run")
    exports_dir.mkdir(parents=True, exist_ok=True)
    work = exports_dir / f"export-{run_id}"
    shutil.rmtree(work, ignore_errors=True)
    steps = len(archived_tables()) + 2  # every table, the blob files, the packing
    done = 0

    def progress(_name: str, _rows: int) -> None:
        nonlocal done
        done += 1
        with db.unit_of_work() as s:
            s.execute(update(ExportRun).where(ExportRun.id == run_id).values(progress=int(100 * done / steps)))

    # The export reads one long snapshot on a connection of its own: not db's, whose SQLite transactions start
    # with BEGIN IMMEDIATE and would hold the write lock (intake, this job's own progress) for the whole export.
    reader = Database(db.url, blob_dir=db.blobs.root if db.blobs else None)
    try:
        manifest = export_archive(reader, work, progress=progress)
        if manifest["blobs"]["missing"]:
            raise ValidationFailed(f"{len(manifest['blobs']['missing'])} blob(s) named in the database had no file")
        name = f"mailroom-export-{run_id}-{utcnow():%Y-%m-%d}.tar.gz"
        tmp = exports_dir / f".{name}.tmp"
        with tarfile.open(tmp, "w:gz", compresslevel=6) as tar:
            tar.add(work, arcname=name.removesuffix(".tar.gz"))
        tmp.replace(exports_dir / name)
    except Exception as exc:
        with db.unit_of_work() as s:
            run = get_export(s, run_id)
            run.error = f"{type(exc).__name__}: {exc}"[:500]
            EXPORTS.move(s, run, RunState.FAILED, actor_id=None, action="export.fail", detail=run.error)
        raise
    finally:
        reader.dispose()
        shutil.rmtree(work, ignore_errors=True)
    with db.unit_of_work() as s:
        run = get_export(s, run_id)
        run.file_name, run.size_bytes = name, (exports_dir / name).stat().st_size
        run.summary = {"rows": sum(t["rows"] for t in manifest["tables"]), "tables": len(manifest["tables"]),
                       "blob_files": manifest["blobs"]["files"]}
        run.progress, run.finished_at = 100, utcnow()
        EXPORTS.move(s, run, RunState.DONE, actor_id=None, action="export.finish")


def restart_stalled_exports(session: Session, *, older_than: timedelta) -> Done[int]:
    """For the sweep: exports, retention runs and subject access ZIPs queued or running longer than
    `older_than` (their job was lost: Redis flushed, a worker killed). Each job is idempotent: a finished
    one is left alone, and one picked up again continues from what is committed."""
    from correspondence.models import RetentionRun, SubjectAccessExport

    cutoff = utcnow() - older_than
    effects = []
    count = 0
    for table, effect in ((ExportRun, "export"), (RetentionRun, "retention"), (SubjectAccessExport, "subject_access")):
        ids = list(session.scalars(select(table.id).where(table.state.in_(WAITING), table.created_at < cutoff)))
        if ids:
            effects.append(Effect.of(effect, *ids))
            count += len(ids)
    return Done(count, tuple(effects))
