"""`mailroom export DIR`: every archived table as JSON Lines, the blobs as files, and manifest.json.

The whole export reads one snapshot of the database (one read transaction; REPEATABLE READ on PostgreSQL),
streams each table to its file (constant memory) and writes manifest.json last, so a folder with a
manifest holds a complete archive.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
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

_DIGEST = re.compile(r"[0-9a-f]{64}")
MANIFEST = "manifest.json"
TABLES_DIR = "tables"
BLOBS_DIR = "blobs"


def _prepare(dest: Path) -> None:
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ValidationFailed(f"{dest} is not an empty folder; export into a new one")
    (dest / TABLES_DIR).mkdir(parents=True, exist_ok=True)
    (dest / BLOBS_DIR).mkdir(exist_ok=True)


def ustar_header(name: str, size: int) -> bytes:
    """A POSIX ustar header for a regular file: owner 0, mode 0600, time 0 (so the same blobs make the same pack).

    Written by hand rather than with tarfile: its general header code costs more than copying a small blob.
    """
    head = bytearray(512)
    head[0:len(name)] = name.encode("ascii")
    head[100:108] = b"0000600\x00"
    head[108:116] = b"0000000\x00"
    head[116:124] = b"0000000\x00"
    head[124:136] = b"%011o\x00" % size
    head[136:148] = b"00000000000\x00"
    head[148:156] = b" " * 8  # the checksum counts its own field as spaces
    head[156:157] = b"0"
    head[257:265] = b"ustar\x0000"
    head[148:156] = b"%06o\x00 " % sum(head)
    return bytes(head)


class _Packer:
    """Blob files into tar packs (blobs/00001.tar, ...), each member a file named by its SHA-256.

    One sequential file per pack instead of a file per blob: creating a million small files is what an export
    would otherwise spend its time on, and a tar moves to other media as one piece. Members come in SHA-256
    order; each pack's SHA-256 is computed as it is written.
    """

    def __init__(self, store: BlobStore, dest: Path) -> None:
        self._root = str(store.root)
        self.dest = dest
        self.packs: list[dict[str, Any]] = []
        self.missing: list[str] = []
        self._out: Any = None
        self._digest = hashlib.sha256()
        self._members = 0
        self._bytes = 0

    def add(self, digest: str) -> None:
        if not _DIGEST.fullmatch(digest):
            raise ValidationFailed(f"blob row {digest[:80]!r} is not named by a SHA-256")
        try:
            # The store's layout (blobstore.path_for), spelled with strings: a million Path objects cost seconds.
            with open(f"{self._root}/{digest[:2]}/{digest[2:4]}/{digest}", "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            self.missing.append(digest)
            return
        if self._out is None or self._members >= PACK_MEMBERS or self._bytes + len(data) > PACK_BYTES:
            self._close()
            self._open()
        self._write(ustar_header(digest, len(data)))
        self._write(data)
        if len(data) % 512:
            self._write(bytes(512 - len(data) % 512))
        self._members += 1
        self._bytes += len(data)

    def _write(self, block: bytes) -> None:
        self._out.write(block)
        self._digest.update(block)

    def _open(self) -> None:
        relpath = f"{BLOBS_DIR}/{len(self.packs) + 1:05d}.tar"
        self._out = (self.dest / relpath).open("wb")
        self._digest = hashlib.sha256()
        self.packs.append({"file": relpath})
        self._members = self._bytes = 0

    def _close(self) -> None:
        if self._out is None:
            return
        self._write(bytes(1024))  # the end of a tar: two zero blocks
        self._out.close()
        self._out = None
        self.packs[-1].update(members=self._members, bytes=self._bytes, sha256=self._digest.hexdigest())

    def finish(self) -> dict[str, Any]:
        self._close()
        return {"packs": self.packs, "files": sum(p["members"] for p in self.packs),
                "bytes": sum(p["bytes"] for p in self.packs), "missing": self.missing}


PACK_MEMBERS = 100_000
PACK_BYTES = 1 << 30


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
    blobs: dict[str, Any] = {}
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
            packer = _Packer(db.blobs, dest)
            for digest_ in conn.execution_options(stream_results=True, yield_per=5000).scalars(query):
                packer.add(digest_)
            blobs = packer.finish()
            if progress:
                progress("blob files", blobs["files"])
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
    for entry in [*manifest["tables"], *manifest["blobs"]["packs"]]:
        path = src / entry["file"]
        if not path.is_file():
            problems.append(f"{entry['file']}: missing from the archive")
        elif (actual := file_sha256(path)) != entry["sha256"]:
            problems.append(f"{entry['file']}: SHA-256 {actual} but the manifest says {entry['sha256']} "
                            "(the file was changed after the export)")
    listed = {entry["file"] for entry in [*manifest["tables"], *manifest["blobs"]["packs"]]}
    for path in sorted([*(src / TABLES_DIR).glob("*.jsonl"), *(src / BLOBS_DIR).glob("*.tar")]):
        if f"{path.parent.name}/{path.name}" not in listed:
            problems.append(f"{path.parent.name}/{path.name}: not in the manifest")
    return problems
