"""Importing files: receive each item once, process it, and account for every one in a summary."""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from correspondence.db import Database
from correspondence.models import Channel
from intake.files import Unreadable
from intake.pipeline import Rules, process_message
from intake.receive import Incoming, receive

log = logging.getLogger(__name__)

Adapter = Callable[[bytes, str], Incoming]


@dataclass
class Summary:
    received: int = 0
    duplicates: int = 0
    quarantined: int = 0
    failed: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    message_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"received": self.received, "duplicates": self.duplicates, "quarantined": self.quarantined,
                "failed": self.failed, "reasons": dict(self.reasons.most_common())}


def reason_key(reason: str) -> str:
    """Group reasons that differ only in numbers (sizes, counts)."""
    return re.sub(r"\d+(\.\d+)?", "N", reason)[:160]


def import_items(db: Database, items: Iterable[tuple[str, bytes | Unreadable]], adapter: Adapter, *,
                 source: str, max_bytes: int, rules: Rules | None = None,
                 commit_every: int = 200) -> Summary:
    """Store and process every item; each is committed before the next batch starts, so a crash
    loses at most the uncommitted batch and a re-run of the same files creates nothing twice."""
    summary = Summary()
    session = db.sessions()
    pending = 0
    try:
        for label, raw in items:
            if isinstance(raw, Unreadable):
                summary.failed += 1
                summary.reasons[reason_key(f"unreadable: {raw}")] += 1
                log.warning("unreadable path=%s reason=%s", label, raw)
                continue
            try:
                with session.begin_nested():
                    incoming = adapter(raw, source)
                    result = receive(session, incoming, max_bytes=max_bytes)
                    if result.duplicate:
                        summary.duplicates += 1
                        continue
                    message = process_message(session, result.message_id, rules=rules)
                summary.received += 1
                summary.message_ids.append(result.message_id)
                if message.status_reason and message.status.value == "quarantined":
                    summary.quarantined += 1
                    summary.reasons[reason_key(message.status_reason)] += 1
            except Exception as exc:
                # Something our own code did not expect: store the raw input quarantined so it is not lost.
                log.exception("import failed path=%s", label)
                try:
                    with session.begin_nested():
                        fallback = Incoming(channel=Channel.EMAIL, key=f"failed:{hashlib.sha256(raw).hexdigest()}",
                                            source=source, raw=raw, subject=f"(could not import {label[-150:]})",
                                            quarantine_reason=f"import: {type(exc).__name__}: {str(exc)[:200]}")
                        r = receive(session, fallback, max_bytes=max_bytes)
                    summary.received += 1
                    summary.quarantined += 1
                    summary.reasons[reason_key(f"import: {type(exc).__name__}")] += 1
                    summary.message_ids.append(r.message_id)
                except Exception:
                    summary.failed += 1
                    summary.reasons[reason_key(f"failed: {type(exc).__name__}")] += 1
            pending += 1
            if pending >= commit_every:
                session.commit()
                pending = 0
        session.commit()
    finally:
        session.close()
    return summary
