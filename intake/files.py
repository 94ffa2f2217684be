"""Streaming readers for .eml files, mbox files and Maildir folders: one raw message at a time."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

# mboxrd quoting: a body line "From ..." is stored as ">From ...", ">From" as ">>From", and so on.
_QUOTED_FROM = re.compile(rb"^>(>*From )")


class Unreadable(Exception):
    """A path that could not be read at all; the text says why."""


def _files_under(path: Path) -> Iterator[Path]:
    if path.is_dir():
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                yield Path(root) / name
    else:
        yield path


def iter_files(paths: Iterable[str | Path]) -> Iterator[tuple[Path, Unreadable | None]]:
    """Every file named or found under a named folder, in a stable order; a missing path is reported."""
    for given in paths:
        path = Path(given)
        if not path.exists():
            yield path, Unreadable("no such file or directory")
            continue
        for file in _files_under(path):
            yield file, None


def iter_eml(paths: Iterable[str | Path]) -> Iterator[tuple[str, bytes | Unreadable]]:
    """Each file (directories are walked) is one message."""
    for file, missing in iter_files(paths):
        if missing is not None:
            yield str(file), missing
            continue
        try:
            yield str(file), file.read_bytes()
        except OSError as exc:
            yield str(file), Unreadable(exc.strerror or str(exc))


def iter_mbox(paths: Iterable[str | Path]) -> Iterator[tuple[str, bytes | Unreadable]]:
    """Split mbox files on their "From " separator lines while streaming, so memory stays flat."""
    for given in paths:
        path = Path(given)
        try:
            fh = path.open("rb")
        except OSError as exc:
            yield str(path), Unreadable(exc.strerror or str(exc))
            continue
        with fh:
            current: list[bytes] = []
            number = 0
            previous_blank = True
            for line in fh:
                if line.startswith(b"From ") and previous_blank:
                    if current:
                        number += 1
                        yield f"{path}#{number}", _join(current)
                    current = []
                    previous_blank = False
                    continue
                current.append(_QUOTED_FROM.sub(rb"\1", line))
                previous_blank = line.strip() == b""
            if current and any(x.strip() for x in current):
                number += 1
                yield f"{path}#{number}", _join(current)


def _join(lines: list[bytes]) -> bytes:
    data = b"".join(lines)
    # The blank line before the next separator belongs to the mbox format, not the message.
    if data.endswith(b"\n\n"):
        data = data[:-1]
    return data


def iter_maildir(paths: Iterable[str | Path]) -> Iterator[tuple[str, bytes | Unreadable]]:
    """Every message in new/ and cur/ of each Maildir (sub-folders such as .Sent are walked too)."""
    for given in paths:
        root = Path(given)
        if not root.is_dir():
            yield str(root), Unreadable("not a Maildir folder")
            continue
        found = False
        for folder in sorted({p.parent.parent for p in root.rglob("cur")} | {root}):
            for sub in ("new", "cur"):
                d = folder / sub
                if not d.is_dir():
                    continue
                for file in sorted(d.iterdir()):
                    if file.is_file():
                        found = True
                        try:
                            yield str(file), file.read_bytes()
                        except OSError as exc:
                            yield str(file), Unreadable(exc.strerror or str(exc))
        if not found and not (root / "cur").is_dir():
            yield str(root), Unreadable("not a Maildir folder (no cur/ or new/)")
