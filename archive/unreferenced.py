"""Deleting blobs no committed row refers to, safely beside an intake that may store the same bytes.

Blobs are content-addressed, so a letter arriving now can carry the very bytes being deleted. The order
that keeps "a committed row always has its file" true, with `correspondence.services.blobs.store_blob`
taking the blob row (locked, or inserted) *before* it writes the file:

1. Lock the candidate blob rows (``FOR UPDATE`` on PostgreSQL; on SQLite the writer's ``BEGIN IMMEDIATE``
   already holds the whole database).
2. Only then look for references, in a fresh statement: an intake that locked a row first has committed
   by now (we waited for its lock), so its reference is seen and the blob is kept.
3. Delete the unreferenced rows and move their files aside (``<digest>.erasing``) *before* the commit.
   An intake that wanted the row waits for our lock, finds no row, inserts it again and writes the file
   anew (the file is already gone from its name, so its write is never skipped).
4. After the commit the moved files are deleted; after a rollback they are moved back.

A crash between 3 and the commit leaves rows whose file sits aside: `restore_set_aside` (run at the start
of every retention run) moves those back and deletes the ones whose row is gone.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import Column, String, cast, event, select
from sqlalchemy.orm import Session

from correspondence.blobstore import BlobStore
from correspondence.models import Base, Blob, Channel, Message
from correspondence.services.blobs import blob_store

ASIDE = ".erasing"
_CHUNK = 500
# Columns that name a blob without a foreign key (the print file of an apply-to-all run).
_LOOSE_REFERENCES = (("apply_runs", "print_sha256"),)


def reference_columns() -> list[Column[Any]]:
    """Every column that refers to a blob: each foreign key to blobs.sha256 in the models (so a table added
    later is covered without a change here), and the known columns that name one without a key."""
    columns: list[Column[Any]] = []
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if any(fk.target_fullname == "blobs.sha256" for fk in column.foreign_keys):
                columns.append(column)
    for table_name, column_name in _LOOSE_REFERENCES:
        columns.append(Base.metadata.tables[table_name].c[column_name])
    return columns


def referenced(session: Session, digests: list[str]) -> set[str]:
    """The digests some row still refers to (scan page images are named inside postal messages' facts)."""
    found: set[str] = set()
    for column in reference_columns():
        found.update(session.scalars(select(column).where(column.in_(digests)).distinct()))
    for digest in set(digests) - found:
        scans = select(Message.id).where(Message.channel == Channel.POSTAL,
                                         cast(Message.facts, String).contains(digest)).limit(1)
        if session.scalar(scans) is not None:
            found.add(digest)
    return found


def _aside(path: Path) -> Path:
    return path.with_name(path.name + ASIDE)


def _pending(session: Session) -> list[tuple[Path, Path]]:
    """The files this session moved aside, and the listeners that finish them after commit or rollback."""
    if "blob_aside" not in session.info:
        session.info["blob_aside"] = []

        def committed(s: Session) -> None:
            for _path, aside in s.info.pop("blob_aside", []):
                aside.unlink(missing_ok=True)

        def rolled_back(s: Session) -> None:
            for path, aside in s.info.pop("blob_aside", []):
                if aside.exists():
                    os.replace(aside, path)

        event.listen(session, "after_commit", committed)
        event.listen(session, "after_rollback", rolled_back)
    pending: list[tuple[Path, Path]] = session.info["blob_aside"]
    return pending


def drop_unreferenced(session: Session, digests: Iterable[str]) -> int:
    """Delete the blobs among `digests` that no row refers to any more (rows now, files after the commit).

    Call it after the rows that referred to them were changed (the changes are flushed first). Returns how
    many blobs were deleted.
    """
    candidates = sorted({d for d in digests if d})
    if not candidates:
        return 0
    session.flush()
    store: BlobStore = blob_store(session)
    dropped = 0
    for start in range(0, len(candidates), _CHUNK):
        chunk = candidates[start:start + _CHUNK]
        rows = list(session.scalars(select(Blob).where(Blob.sha256.in_(chunk))
                                    .order_by(Blob.sha256).with_for_update()))
        keep = referenced(session, chunk)
        for blob in rows:
            if blob.sha256 in keep:
                continue
            session.delete(blob)
            dropped += 1
            path = store.path_for(blob.sha256)
            if path.exists():
                aside = _aside(path)
                os.replace(path, aside)
                _pending(session).append((path, aside))
        session.flush()
    return dropped


def restore_set_aside(session: Session) -> int:
    """Finish what a crash interrupted: a file set aside whose blob row still exists goes back to its name,
    one whose row is gone is deleted. Returns how many files were moved back."""
    store = blob_store(session)
    moved = 0
    for aside in store.root.glob(f"*/*/*{ASIDE}"):
        digest = aside.name[: -len(ASIDE)]
        path = store.path_for(digest)
        if session.get(Blob, digest) is not None:
            os.replace(aside, path)
            moved += 1
        else:
            aside.unlink(missing_ok=True)
    return moved
