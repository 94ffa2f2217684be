"""`mailroom backup DEST`: a consistent snapshot of the running office, its blobs copied incrementally, proven.

Layout of a backup folder (DEST):

    DEST/snapshots/2026-12-03T191500Z/database.sqlite3   (or database.pgdump: pg_dump's custom format)
                                     /blobs.txt          (the SHA-256 of every blob file the snapshot refers to)
                                     /manifest.json      (written last: time, database kind, migration, counts,
                                                          checksums)
    DEST/blobs/ab/cd/abcd…                                (every snapshot's blob files, each stored once)

Consistency: SQLite's online backup API copies the whole file in one step under a read lock, so the copy is
one committed state; PostgreSQL's `pg_dump --snapshot` dumps the snapshot a REPEATABLE READ transaction
exported, and the counts and checksums in the manifest are computed in that same transaction. Everything
committed before the snapshot began is in it, whatever the app writes meanwhile.

Blobs are content-addressed, so a file already in DEST/blobs is never copied again. A snapshot is built in a
hidden folder and renamed into place once complete; a folder without manifest.json is not a snapshot.
One lock file serialises backups and pruning in one folder (pruning deletes blob files no kept snapshot
lists, which must not race a backup that has copied files it has not listed yet).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Table, func, inspect, select, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.orm import Session

from archive.tables import archived_tables, table_sum
from correspondence.blobstore import BlobStore
from correspondence.db import POOLER_PARAM, Database
from correspondence.errors import ValidationFailed
from correspondence.models import BackupRecord, Base, Blob, utcnow
from correspondence.services.audit import record

FORMAT = "mailroom-backup"
FORMAT_VERSION = 1
SNAPSHOTS = "snapshots"
BLOBS = "blobs"
MANIFEST = "manifest.json"
BLOB_LIST = "blobs.txt"
SQLITE_FILE = "database.sqlite3"
PG_FILE = "database.pgdump"
LOCK = ".lock"
NAME_FORMAT = "%Y-%m-%dT%H%M%SZ"


class BackupFailed(ValidationFailed):
    """A backup or its verification could not be done (the reason says why, in plain words)."""


@dataclass(frozen=True)
class Retention:
    """Keep the newest snapshot of each of the last `daily` days and of each of the last `weekly` weeks."""

    daily: int = 7
    weekly: int = 4


@contextmanager
def _locked(dest: Path) -> Iterator[None]:
    dest.mkdir(parents=True, exist_ok=True)
    with (dest / LOCK).open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _sqlite_path(db: Database) -> Path:
    name = db.engine.url.database
    if not name or name == ":memory:":
        raise BackupFailed("an in-memory SQLite database cannot be backed up")
    return Path(name)


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection URI for pg_dump/pg_restore (the password goes in PGPASSWORD, not on the command line)."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    # URL.set(password=None) leaves the password as it was (None means "unchanged"), which put it on
    # pg_dump's command line for anyone to see in `ps`: build the URI without it instead. `?pgbouncer=true`
    # is Mailroom's, not libpq's (correspondence.db.POOLER_PARAM): pg_dump would refuse it.
    plain = URL.create("postgresql", username=parsed.username, host=parsed.host, port=parsed.port,
                       database=parsed.database, query=parsed.difference_update_query([POOLER_PARAM]).query)
    return plain.render_as_string(hide_password=False), env


def _run(args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)  # noqa: S603 - fixed tools
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise BackupFailed(f"{Path(args[0]).name} failed: {' / '.join(tail) or f'exit {done.returncode}'}")


def _present(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def snapshot_sums(conn: Connection) -> dict[str, Any]:
    """Rows per table (every table), the archive checksum per archived table, and the migration revision."""
    present = _present(conn)
    checksums = {t.name: table_sum(conn, t) for t in archived_tables() if t.name in present}
    rows: dict[str, int] = {}
    for t in Base.metadata.sorted_tables:
        if t.name in present:
            rows[t.name] = checksums[t.name].rows if t.name in checksums else _count(conn, t)
    revision = conn.scalar(text("SELECT version_num FROM alembic_version")) if "alembic_version" in present else None
    return {"migration_revision": revision, "rows": rows,
            "sha256": {name: s.sha256 for name, s in checksums.items()}}


def _count(conn: Connection, t: Table) -> int:
    return int(conn.scalar(select(func.count()).select_from(t)) or 0)


def _blob_digests(conn: Connection) -> list[str]:
    query = select(Blob.sha256).where(Blob.data.is_(None)).order_by(Blob.sha256)
    return list(conn.execution_options(stream_results=True, yield_per=5000).scalars(query))


def _snapshot_sqlite(db: Database, work: Path) -> tuple[dict[str, Any], list[str]]:
    target = work / SQLITE_FILE
    source = sqlite3.connect(str(_sqlite_path(db)), timeout=30)
    copy = sqlite3.connect(str(target))
    try:
        # pages=-1 (the default): the whole database in one step, under one read lock: one committed state.
        source.backup(copy)
    finally:
        copy.close()
        source.close()
    snap = Database(f"sqlite:///{target}")
    try:
        with snap.engine.connect() as conn:
            return snapshot_sums(conn), _blob_digests(conn)
    finally:
        snap.dispose()


def _snapshot_postgresql(db: Database, work: Path) -> tuple[dict[str, Any], list[str]]:
    uri, env = _libpq(db.url)
    with db.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            snapshot_id = conn.scalar(text("SELECT pg_export_snapshot()"))
            # pg_dump reads the snapshot this transaction exported: it stays valid while the transaction is open.
            _run(["pg_dump", "--format=custom", "--no-owner", f"--snapshot={snapshot_id}",
                  f"--file={work / PG_FILE}", f"--dbname={uri}"], env)
            return snapshot_sums(conn), _blob_digests(conn)


class _BlobCopier:
    """Blob files into the backup's store, each copied once (content-addressed: a file there is that content).

    No fsync per file (a first backup of 20,000 blobs spent 140 s on them): each is written to a temporary name
    and renamed into place, and make_backup syncs the disk once before the snapshot's manifest exists, so a
    snapshot that says it is complete has every file it lists on disk.
    """

    def __init__(self, source: BlobStore, target: BlobStore) -> None:
        self.source, self.target = source, target
        self._dirs: set[Path] = set()

    def copy(self, digest: str) -> int:
        """Copy one blob unless it is there already; returns the bytes copied (0 if none)."""
        target = self.target.path_for(digest)
        if target.is_file():
            return 0
        data = self.source.path_for(digest).read_bytes()
        if target.parent not in self._dirs:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._dirs.add(target.parent)
        tmp = target.parent / f".tmp-{digest}-{os.getpid()}"
        try:
            tmp.write_bytes(data)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return len(data)


def _new_name(root: Path, now: datetime) -> str:
    name = now.astimezone(UTC).strftime(NAME_FORMAT)
    n = 1
    while (root / (name if n == 1 else f"{name}-{n}")).exists():
        n += 1
    return name if n == 1 else f"{name}-{n}"


def make_backup(db: Database, dest: Path, *, now: datetime | None = None) -> dict[str, Any]:
    """Snapshot db and copy its new blob files into dest; returns the snapshot's manifest (plus what it cost)."""
    if db.blobs is None:
        raise BackupFailed("the database has no blob folder")
    kind = db.engine.dialect.name
    if kind not in ("sqlite", "postgresql"):
        raise BackupFailed(f"cannot back up a {kind} database")
    started = time.monotonic()
    started_at = now or datetime.now(UTC)
    with _locked(dest):
        root = dest / SNAPSHOTS
        root.mkdir(exist_ok=True)
        name = _new_name(root, started_at)
        work = root / f".partial-{name}"
        work.mkdir()
        try:
            sums, digests = (_snapshot_sqlite if kind == "sqlite" else _snapshot_postgresql)(db, work)
            copier = _BlobCopier(db.blobs, BlobStore(dest / BLOBS))
            copied = copied_bytes = 0
            missing: list[str] = []
            with (work / BLOB_LIST).open("w", encoding="ascii") as listing:
                for digest in digests:
                    try:
                        size = copier.copy(digest)
                    except FileNotFoundError:
                        missing.append(digest)
                        continue
                    listing.write(digest + "\n")
                    copied += size > 0
                    copied_bytes += size
            os.sync()  # every copied blob and the database file on disk before the manifest says "complete"
            database_file = SQLITE_FILE if kind == "sqlite" else PG_FILE
            manifest = {
                "format": FORMAT, "format_version": FORMAT_VERSION, "snapshot": name,
                "created_at": started_at.astimezone(UTC).isoformat(), "database_kind": kind,
                "database_file": database_file, "database_sha256": _file_sha256(work / database_file),
                "database_bytes": (work / database_file).stat().st_size,
                **sums,
                "blobs": {"files": len(digests) - len(missing), "copied": copied, "copied_bytes": copied_bytes,
                          "list_sha256": _file_sha256(work / BLOB_LIST), "missing": missing},
            }
            manifest["seconds"] = round(time.monotonic() - started, 3)
            (work / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
            os.replace(work, root / name)
            os.sync()
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
    manifest["size_bytes"] = manifest["database_bytes"] + copied_bytes
    manifest["path"] = str(root / name)
    return manifest


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def snapshots(dest: Path) -> list[Path]:
    """The complete snapshots in a backup folder, oldest first."""
    root = dest / SNAPSHOTS
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST).is_file())


def resolve_snapshot(path: Path) -> Path:
    """A snapshot folder, or a backup folder (its newest snapshot)."""
    if (path / MANIFEST).is_file():
        return path
    found = snapshots(path)
    if not found:
        raise BackupFailed(f"{path} holds no finished backup snapshot")
    return found[-1]


def read_manifest(snapshot: Path) -> dict[str, Any]:
    path = snapshot / MANIFEST
    if not path.is_file():
        raise BackupFailed(f"{snapshot} is not a backup snapshot (no {MANIFEST})")
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise BackupFailed(f"{path} is not a Mailroom backup manifest this version reads")
    return manifest


def _compare(manifest: dict[str, Any], found: dict[str, Any]) -> list[str]:
    problems = []
    if found["migration_revision"] != manifest["migration_revision"]:
        problems.append(f"migration {found['migration_revision']} restored, {manifest['migration_revision']} "
                        "in the manifest")
    for name, rows in manifest["rows"].items():
        got = found["rows"].get(name)
        if got is None:
            problems.append(f"table {name}: missing from the restored database")
        elif got != rows:
            problems.append(f"table {name}: {got} rows restored, {rows} in the manifest")
        elif found["sha256"].get(name) != manifest["sha256"].get(name):
            problems.append(f"table {name}: same row count ({rows}) but different content")
    return problems


def restore_snapshot(snapshot: Path, url: str) -> None:
    """Put a snapshot's database at url: a new SQLite file, or an existing empty PostgreSQL database.

    The blob files stay in the backup folder's blobs/; copy them into the blob store (same layout) to run the
    office on the restored database.
    """
    manifest = read_manifest(snapshot)
    kind = make_url(url).get_backend_name()
    if kind != manifest["database_kind"]:
        raise BackupFailed(f"this is a {manifest['database_kind']} backup; it cannot be restored into {kind} "
                           "(use `mailroom export` and `mailroom restore` to move between databases)")
    if kind == "sqlite":
        target = Path(make_url(url).database or "")
        if not target.name or target.exists():
            raise BackupFailed(f"restore a SQLite backup into a new file, not {target}")
        source = sqlite3.connect(f"file:{snapshot / SQLITE_FILE}?mode=ro", uri=True)
        copy = sqlite3.connect(str(target))
        try:
            source.backup(copy)
            check = copy.execute("PRAGMA integrity_check").fetchone()
        finally:
            copy.close()
            source.close()
        if not check or check[0] != "ok":
            raise BackupFailed(f"the restored SQLite file is damaged: {check}")
        return
    uri, env = _libpq(url)
    _run(["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={uri}", str(snapshot / PG_FILE)], env)


def _sums_of(url: str) -> dict[str, Any]:
    db = Database(url)
    try:
        with db.engine.connect() as conn:
            return snapshot_sums(conn)
    finally:
        db.dispose()


def scratch_database_url(server_url: str) -> str:
    """A new database's URL on the same PostgreSQL server, named after the server URL's database."""
    parsed = make_url(server_url)
    return parsed.set(database=f"{parsed.database}_verify_{secrets.token_hex(4)}").render_as_string(
        hide_password=False)


@contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for the duration (dropped afterwards, whatever happened)."""
    scratch_url = scratch_database_url(server_url)
    name = make_url(scratch_url).database
    admin = Database(server_url)
    try:
        with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield scratch_url
        finally:
            with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def verify_backup(snapshot: Path, *, server_url: str | None = None) -> list[str]:
    """Restore the snapshot into a scratch database and compare it with the manifest; check every blob file.

    SQLite: a scratch copy made with the backup API, integrity-checked. PostgreSQL: pg_restore into a new
    database on the server `server_url` names (dropped afterwards). Returns every difference (none: proven).
    """
    manifest = read_manifest(snapshot)
    problems = []
    db_file = snapshot / manifest["database_file"]
    if not db_file.is_file():
        return [f"{manifest['database_file']}: missing from the snapshot"]
    if _file_sha256(db_file) != manifest["database_sha256"]:
        problems.append(f"{manifest['database_file']}: changed since the backup (checksum differs)")
    if manifest["database_kind"] == "sqlite":
        with tempfile.TemporaryDirectory(prefix="mailroom-verify-") as scratch:
            url = f"sqlite:///{Path(scratch) / 'restored.sqlite3'}"
            restore_snapshot(snapshot, url)
            found = _sums_of(url)
    else:
        if not server_url or not server_url.startswith("postgresql"):
            raise BackupFailed("verifying a PostgreSQL backup needs a PostgreSQL server to restore it into "
                               "(DATABASE_URL names one)")
        with scratch_database(server_url) as url:
            restore_snapshot(snapshot, url)
            found = _sums_of(url)
    problems.extend(_compare(manifest, found))
    problems.extend(_check_blobs(snapshot, manifest))
    return problems


def _check_blobs(snapshot: Path, manifest: dict[str, Any]) -> list[str]:
    problems = [f"blob {d}: had no file in the blob store when the backup was made"
                for d in manifest["blobs"]["missing"][:20]]
    listing = snapshot / BLOB_LIST
    if _file_sha256(listing) != manifest["blobs"]["list_sha256"]:
        problems.append(f"{BLOB_LIST}: changed since the backup")
    store = BlobStore(snapshot.parent.parent / BLOBS)
    bad = 0
    listed = 0
    with listing.open(encoding="ascii") as fh:
        for line in fh:
            listed += 1
            digest = line.strip()
            if not store.verify(digest):
                bad += 1
                if bad <= 20:
                    problems.append(f"blob {digest}: missing from the backup or its content changed")
    if bad > 20:
        problems.append(f"… {bad} blob files missing or changed in all")
    if listed != manifest["blobs"]["files"]:
        problems.append(f"{BLOB_LIST} lists {listed} blobs, the manifest {manifest['blobs']['files']}")
    return problems


def _kept(names: list[tuple[str, datetime]], keep: Retention) -> set[str]:
    """Names of the snapshots to keep: the newest of each of the last `daily` days and `weekly` ISO weeks."""
    kept: set[str] = set()
    days: list[Any] = []
    weeks: list[Any] = []
    for name, at in sorted(names, key=lambda item: item[1], reverse=True):
        day = at.date()
        week = at.isocalendar()[:2]
        if day not in days and len(days) < keep.daily:
            days.append(day)
            kept.add(name)
        if week not in weeks and len(weeks) < keep.weekly:
            weeks.append(week)
            kept.add(name)
    return kept


def prune(dest: Path, keep: Retention, *, now: datetime | None = None) -> list[str]:
    """Delete the snapshots the retention does not keep, unfinished ones older than a day, and the blob files
    no kept snapshot lists; returns the names of the snapshots deleted. The newest snapshot is always kept."""
    now = now or datetime.now(UTC)
    removed: list[str] = []
    with _locked(dest):
        complete = [(p.name, datetime.fromisoformat(read_manifest(p)["created_at"])) for p in snapshots(dest)]
        kept = _kept(complete, keep)
        if complete:
            kept.add(max(complete, key=lambda item: item[1])[0])
        root = dest / SNAPSHOTS
        for name, _at in complete:
            if name not in kept:
                shutil.rmtree(root / name)
                removed.append(name)
        for partial in root.glob(".partial-*") if root.is_dir() else []:
            if datetime.fromtimestamp(partial.stat().st_mtime, UTC) < now - timedelta(days=1):
                shutil.rmtree(partial, ignore_errors=True)
        if removed:
            _sweep_blobs(dest)
    return removed


def _sweep_blobs(dest: Path) -> int:
    """Delete blob files that no remaining snapshot lists (run under the folder's lock)."""
    listed: set[str] = set()
    for snap in snapshots(dest):
        with (snap / BLOB_LIST).open(encoding="ascii") as fh:
            listed.update(line.strip() for line in fh)
    deleted = 0
    for path in (dest / BLOBS).glob("*/*/*"):
        if path.is_file() and path.name not in listed:
            path.unlink()
            deleted += 1
    return deleted


def record_backup(session: Session, *, actor_id: int | None, ok: bool, made_by: str, destination: Path,
                  started_at: datetime, manifest: dict[str, Any] | None = None,
                  error: str | None = None) -> BackupRecord:
    """Keep what a backup attempt did (the dashboard reads the last good one) and audit it."""
    manifest = manifest or {}
    backup = BackupRecord(
        started_at=started_at, finished_at=utcnow(), ok=ok, made_by=made_by,
        database_kind=str(manifest.get("database_kind", session.get_bind().dialect.name)),
        snapshot=str(manifest.get("snapshot", "")), destination=str(destination)[:500],
        size_bytes=int(manifest.get("size_bytes", 0)),
        blob_files_copied=int(manifest.get("blobs", {}).get("copied", 0)),
        seconds=float(manifest.get("seconds", 0.0)), error=error[:1000] if error else None)
    session.add(backup)
    session.flush()
    summary = {"snapshot": backup.snapshot, "size_bytes": backup.size_bytes, "made_by": made_by}
    record(session, actor_id=actor_id, action="backup.made" if ok else "backup.failed", object_type="backup",
           object_id=backup.id, after=summary, detail=backup.error)
    return backup


def record_verification(session: Session, snapshot: Path, problems: list[str], *, actor_id: int | None) -> None:
    """Audit that a snapshot was restored into a scratch database and compared (and what it found)."""
    record(session, actor_id=actor_id, action="backup.verified" if not problems else "backup.verify_failed",
           object_type="backup", object_id=snapshot.name, after={"snapshot": snapshot.name},
           detail="; ".join(problems[:5])[:1000] if problems else None)


@dataclass(frozen=True)
class BackupStatus:
    """What the dashboard says about backups."""

    configured: bool
    last_ok: BackupRecord | None
    last_failed: BackupRecord | None
    overdue: bool


OVERDUE_AFTER = timedelta(hours=48)


def backup_status(session: Session, *, configured: bool, now: datetime | None = None) -> BackupStatus:
    """Backups count as set up when a backup folder is configured or one was ever made."""
    now = now or utcnow()
    last_ok = session.scalars(select(BackupRecord).where(BackupRecord.ok.is_(True))
                              .order_by(BackupRecord.finished_at.desc(), BackupRecord.id.desc()).limit(1)).first()
    last_failed = session.scalars(select(BackupRecord).where(BackupRecord.ok.is_(False))
                                  .order_by(BackupRecord.id.desc()).limit(1)).first()
    configured = configured or last_ok is not None or last_failed is not None
    finished = last_ok.finished_at if last_ok is not None else None
    overdue = configured and (finished is None or now - finished > OVERDUE_AFTER)
    return BackupStatus(configured, last_ok, last_failed, overdue)


@dataclass(frozen=True)
class BackupDone:
    manifest: dict[str, Any]
    pruned: list[str]
    record_id: int


def back_up(db: Database, dest: Path, keep: Retention, *, made_by: str, actor_id: int | None = None) -> BackupDone:
    """The command's and the daily job's path: snapshot, record the attempt (success or failure), prune.

    Not one unit of work: the snapshot must not sit inside a write transaction, and a failed backup is
    still recorded (in its own transaction) before the error goes on to the caller.
    """
    started_at = utcnow()
    try:
        manifest = make_backup(db, dest)
    except Exception as exc:
        reason = str(exc) if isinstance(exc, ValidationFailed) else f"{type(exc).__name__}: {exc}"
        with db.unit_of_work() as session:
            record_backup(session, actor_id=actor_id, ok=False, made_by=made_by, destination=dest,
                          started_at=started_at, error=reason)
        if isinstance(exc, OSError):  # a folder that cannot be written, a full disk: said, not a traceback
            raise BackupFailed(f"the backup could not be written to {dest}: {reason}") from exc
        raise
    with db.unit_of_work() as session:
        backup = record_backup(session, actor_id=actor_id, ok=True, made_by=made_by, destination=dest,
                               started_at=started_at, manifest=manifest)
        record_id = backup.id
    return BackupDone(manifest, prune(dest, keep), record_id)
