"""Content-addressed storage of raw inputs: a row per blob (size, type) and the bytes as a file.

The row is taken first (an existing one locked against deletion, FOR KEY SHARE on PostgreSQL, or a new one
flushed), then the file is written and fsynced, all before the commit: so a committed row always has its file,
even beside retention deleting the same content-addressed blob (archive/unreferenced.py, which sets the file
aside only while it holds the row's lock; a file checked before the row could vanish in between).
A transaction that rolls back can leave a file with no row; it is harmless (the same bytes stored
later reuse it) and never read without a row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from correspondence.blobstore import BlobStore
from correspondence.models import Blob


class BlobStoreMissing(RuntimeError):
    """The session was made without a blob folder (Database(..., blob_dir=...))."""


def blob_store(session: Session) -> BlobStore:
    store = session.info.get("blobs")
    if store is None:
        raise BlobStoreMissing("this database session has no blob folder; build it with Database.from_settings")
    return cast(BlobStore, store)


def store_blob(session: Session, data: bytes, content_type: str = "application/octet-stream") -> str:
    """Store bytes once, keyed by SHA-256; storing the same bytes again is a no-op."""
    digest = hashlib.sha256(data).hexdigest()
    if not _present(session, [digest]):
        session.add(Blob(sha256=digest, size=len(data), content_type=content_type))
        session.flush()
    blob_store(session).put(data)
    return digest


def _present(session: Session, digests: list[str]) -> set[str]:
    """The digests that have a row, each locked so retention cannot delete it before this transaction ends."""
    query = select(Blob.sha256).where(Blob.sha256.in_(digests)).with_for_update(key_share=True)
    return set(session.scalars(query))


def store_blobs(session: Session, items: Iterable[tuple[bytes, str]]) -> list[str]:
    """Store many (bytes, content type) pairs with one look-up of the rows already present."""
    pairs = list(items)
    digests = [hashlib.sha256(data).hexdigest() for data, _ctype in pairs]
    new: dict[str, tuple[int, str]] = {}
    for digest, (data, content_type) in zip(digests, pairs, strict=True):
        new.setdefault(digest, (len(data), content_type))
    if new:
        present = _present(session, list(new))
        session.add_all(Blob(sha256=d, size=size, content_type=ctype)
                        for d, (size, ctype) in new.items() if d not in present)
    blob_store(session).put_many([data for data, _ctype in pairs])
    return digests


def load_blob(session: Session, digest: str) -> bytes | None:
    blob = session.get(Blob, digest)
    if blob is None:
        return None
    if blob.data is not None:  # stored in the database by a release before 0005
        return blob.data
    return blob_store(session).get(digest)
