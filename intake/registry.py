"""String-keyed registry of intake adapters; an unknown key is a clear error."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from intake.cwc import incoming_cwc
from intake.files import Unreadable, iter_eml, iter_maildir, iter_mbox
from intake.mail import incoming_email
from intake.receive import Incoming
from intake.scans import incoming_scan
from intake.social import incoming_social, iter_social

Reader = Callable[[Iterable[str]], Iterator[tuple[str, bytes | Unreadable]]]
Adapter = Callable[[bytes, str], Incoming]

FILE_ADAPTERS: dict[str, tuple[Reader, Adapter]] = {
    "eml": (iter_eml, incoming_email),
    "mbox": (iter_mbox, incoming_email),
    "maildir": (iter_maildir, incoming_email),
    "cwc": (iter_eml, incoming_cwc),
    "social": (iter_social, incoming_social),
    "scans": (iter_eml, incoming_scan),
}


def file_adapter(kind: str) -> tuple[Reader, Adapter]:
    try:
        return FILE_ADAPTERS[kind]
    except KeyError:
        raise KeyError(f"unknown intake adapter {kind!r}; known: {', '.join(sorted(FILE_ADAPTERS))}") from None
