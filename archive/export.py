"""`mailroom export DIR`: every archived table as JSON Lines, the blobs as files, and manifest.json.

The whole export reads one snapshot of the database (one read transaction; REPEATABLE READ on PostgreSQL),
streams each table to its file (constant memory) and writes manifest.json last, so a folder with a
manifest holds a complete archive.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from archive.tables import (
    FORMAT,
    FORMAT_VERSION,
    LEFT_OUT_COLUMNS,
    LEFT_OUT_TABLES,
    archived_tables,
    encode_lines,
)
from correspondence.blobstore import BlobStore
from correspondence.db import Database
from correspondence.errors import ValidationFailed
from correspondence.migrate import current_revision, head_revision
from correspondence.models import Blob

MANIFEST = "manifest.json"
TABLES_DIR = "tables"
BLOBS_DIR = "blobs"


def blob_relpath(digest: str) -> str:
    return f"{BLOBS_DIR}/{digest[:2]}/{digest}"


def _prepare(dest: Path) -> None:
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ValidationFailed(f"{dest} is not an empty folder; export into a new one")
    (dest / TABLES_DIR).mkdir(parents=True, exist_ok=True)
    (dest / BLOBS_DIR).mkdir(exist_ok=True)


def _copy_blob(store: BlobStore, digest: str, dest: Path) -> int | None:
    """Copy one blob file into the archive; its size, or None when the store has no file for it."""
    source = store.path_for(digest)
    target = dest / blob_relpath(digest)
    target.parent.mkdir(exist_ok=True)
    try:
        shutil.copyfile(source, target)
    except FileNotFoundError:
        return None
    return target.stat().st_size


def export_archive(db: Database, dest: Path, *,
                   progress: Callable[[str, int], None] | None = None) -> dict[str, Any]:
    """Write the archive of db (rows and blob files) into the empty folder dest; returns the manifest."""
    if db.blobs is None:
        raise ValidationFailed("the database has no blob folder")
    revision = current_revision(db.engine)
    head = head_revision(db.url)
    if revision != head:
        raise ValidationFailed(f"the database is at migration {revision}, this Mailroom at {head}: "
                               "run `mailroom init` to migrate it first")
    _prepare(dest)
    tables: list[dict[str, Any]] = []
    blobs = {"dir": BLOBS_DIR, "files": 0, "bytes": 0, "missing": []}
    conn = db.engine.connect()
    if db.engine.dialect.name == "postgresql":
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
    try:
        with conn.begin():
            for table in archived_tables():
                relpath = f"{TABLES_DIR}/{table.name}.jsonl"
                digest = hashlib.sha256()
                rows = 0
                with (dest / relpath).open("wb") as fh:
                    for block in encode_lines(conn, table):
                        fh.write(block)
                        digest.update(block)
                        rows += block.count(b"\n")
                tables.append({"name": table.name, "file": relpath, "rows": rows, "sha256": digest.hexdigest()})
                if progress:
                    progress(table.name, rows)
            # Blob rows that hold no bytes themselves (all since migration 0005) have a file in the store.
            query = select(Blob.sha256).where(Blob.data.is_(None)).order_by(Blob.sha256)
            for digest_ in conn.execution_options(stream_results=True, yield_per=5000).scalars(query):
                size = _copy_blob(db.blobs, digest_, dest)
                if size is None:
                    blobs["missing"].append(digest_)  # type: ignore[attr-defined]
                else:
                    blobs["files"] += 1  # type: ignore[operator]
                    blobs["bytes"] += size  # type: ignore[operator]
            if progress:
                progress("blob files", int(blobs["files"]))  # type: ignore[call-overload]
    finally:
        conn.close()
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": datetime.now(UTC).isoformat(),
        "migration_revision": revision,
        "source_database": db.engine.dialect.name,
        "left_out": {"tables": list(LEFT_OUT_TABLES), "columns": {k: list(v) for k, v in LEFT_OUT_COLUMNS.items()}},
        "tables": tables,
        "blobs": blobs,
    }
    tmp = dest / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, dest / MANIFEST)
    return manifest


def read_manifest(src: Path) -> dict[str, Any]:
    path = src / MANIFEST
    if not path.is_file():
        raise ValidationFailed(f"{src} holds no {MANIFEST}: not a Mailroom archive, or an unfinished export")
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        raise ValidationFailed(f"{path} is not a Mailroom archive manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ValidationFailed(f"archive format version {manifest.get('format_version')}; this Mailroom reads "
                               f"version {FORMAT_VERSION}")
    return manifest


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def check_files(src: Path, manifest: dict[str, Any]) -> list[str]:
    """Differences between the archive's table files and the manifest (a changed, missing or extra file)."""
    problems = []
    for entry in manifest["tables"]:
        path = src / entry["file"]
        if not path.is_file():
            problems.append(f"{entry['file']}: missing from the archive")
        elif (actual := file_sha256(path)) != entry["sha256"]:
            problems.append(f"{entry['file']}: SHA-256 {actual} but the manifest says {entry['sha256']} "
                            "(the file was changed after the export)")
    listed = {entry["file"] for entry in manifest["tables"]}
    for path in sorted((src / TABLES_DIR).glob("*.jsonl")):
        if f"{TABLES_DIR}/{path.name}" not in listed:
            problems.append(f"{TABLES_DIR}/{path.name}: not in the manifest")
    return problems
