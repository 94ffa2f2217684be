"""Content-addressed storage of raw inputs."""

from __future__ import annotations

import hashlib

from sqlalchemy.orm import Session

from correspondence.models import Blob


def store_blob(session: Session, data: bytes, content_type: str = "application/octet-stream") -> str:
    """Store bytes once, keyed by SHA-256; storing the same bytes again is a no-op."""
    digest = hashlib.sha256(data).hexdigest()
    if session.get(Blob, digest) is None:
        session.add(Blob(sha256=digest, size=len(data), content_type=content_type, data=data))
        session.flush()
    return digest


def load_blob(session: Session, digest: str) -> bytes | None:
    blob = session.get(Blob, digest)
    return blob.data if blob else None
