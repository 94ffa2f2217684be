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
        path = (self.root / digest[:2] / digest[2:4] / digest).resolve()
        if not path.is_relative_to(self.root):
            raise BlobPathError(f"blob path {path} is outside {self.root}")
        return path

    def put(self, data: bytes) -> str:
        """Write bytes once; durable on disk when this returns. Returns the SHA-256."""
        digest = hashlib.sha256(data).hexdigest()
        path = self.path_for(digest)
        try:
            if path.stat().st_size == len(data):
                return digest
        except FileNotFoundError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return digest

    def get(self, digest: str) -> bytes | None:
        try:
            return self.path_for(digest).read_bytes()
        except FileNotFoundError:
            return None

    def verify(self, digest: str) -> bool:
        """True when the file exists and its content still hashes to its name."""
        data = self.get(digest)
        return data is not None and hashlib.sha256(data).hexdigest() == digest
