"""Raw inputs and attachments as files under the instance folder, named by their SHA-256.

``blobs/ab/cd/abcd…`` — written to a temporary file, fsynced and renamed into place, so a file
that exists is complete. Names come only from a digest this module computed or checked, and every
path is resolved and confirmed to sit inside the store's root before it is opened.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

_DIGEST = re.compile(r"[0-9a-f]{64}")


class BlobPathError(ValueError):
    """A digest that is not a SHA-256, or a path that would leave the store."""


class BlobStore:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()

    def path_for(self, digest: str) -> Path:
        if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
            raise BlobPathError(f"not a SHA-256 digest: {str(digest)[:80]!r}")
        # The digest is 64 hex characters, so the path is three plain names below the root; checked
        # without touching the disk (resolve() costs a system call per component).
        path = self.root / digest[:2] / digest[2:4] / digest
        if path.parent.parent.parent != self.root or ".." in path.parts:
            raise BlobPathError(f"blob path {path} is outside {self.root}")
        return path

    def put(self, data: bytes) -> str:
        """Write bytes once; durable on disk when this returns. Returns the SHA-256."""
        return self.put_many([data])[0]

    def put_many(self, items: list[bytes]) -> list[str]:
        """Write many blobs with two flushes to disk for the lot instead of two per file.

        Each new blob goes to a temporary file; all are flushed (``os.sync``), then renamed into
        place, then flushed again so the names are durable too. A name that exists therefore always
        holds complete content. Returns the digests in the order given.
        """
        digests = [hashlib.sha256(data).hexdigest() for data in items]
        pending: dict[str, tuple[Path, bytes]] = {}
        for digest, data in zip(digests, items, strict=True):
            path = self.path_for(digest)
            if digest in pending or (path.is_file() and path.stat().st_size == len(data)):
                continue
            pending[digest] = (path, data)
        if not pending:
            return digests
        temps: list[tuple[str, Path]] = []
        try:
            for path, data in pending.values():
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
                temps.append((tmp, path))
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
            os.sync()
            for tmp, path in temps:
                os.replace(tmp, path)
            os.sync()
        except BaseException:
            for tmp, _path in temps:
                Path(tmp).unlink(missing_ok=True)
            raise
        return digests

    def get(self, digest: str) -> bytes | None:
        try:
            return self.path_for(digest).read_bytes()
        except FileNotFoundError:
            return None

    def remove(self, digest: str) -> None:
        """Delete a blob's file (call only after the transaction that dropped its last row committed)."""
        self.path_for(digest).unlink(missing_ok=True)

    def verify(self, digest: str) -> bool:
        """True when the file exists and its content still hashes to its name."""
        data = self.get(digest)
        return data is not None and hashlib.sha256(data).hexdigest() == digest
