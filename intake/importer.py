"""Importing files: receive each item once, process it, and account for every one in a summary."""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from correspondence.db import Database
from correspondence.models import Channel, Constituent, ConstituentEmail, Message, MessageStatus
from correspondence.services.messages import get_message
from intake.files import Unreadable
from intake.pipeline import Context, Rules, process_message, run
from intake.receive import Incoming, Received, receive, receive_many

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
                 source: str, max_bytes: int, rules: Rules | None = None, chunk: int = 250) -> Summary:
    """Store and process every item, a chunk per transaction. Each chunk is committed before the next
    is read, so a crash loses at most the chunk in hand, and a re-run of the same files creates
    nothing twice. A chunk that fails as a whole is redone item by item, so one bad item cannot
    take the others down with it."""
    summary = Summary()
    session = db.sessions()
    try:
        batch: list[tuple[str, bytes]] = []
        for label, raw in items:
            if isinstance(raw, Unreadable):
                summary.failed += 1
                summary.reasons[reason_key(f"unreadable: {raw}")] += 1
                log.warning("unreadable path=%s reason=%s", label, raw)
                continue
            batch.append((label, raw))
            if len(batch) >= chunk:
                _import_chunk(session, batch, adapter, source, max_bytes, rules, summary)
                batch = []
        if batch:
            _import_chunk(session, batch, adapter, source, max_bytes, rules, summary)
    finally:
        session.close()
    return summary


def _incoming(adapter: Adapter, label: str, raw: bytes, source: str) -> Incoming:
    try:
        return adapter(raw, source)
    except Exception as exc:
        # Something our own code did not expect: keep the raw input, quarantined with the reason.
        log.exception("adapter failed path=%s", label)
        return Incoming(channel=Channel.EMAIL, key=f"failed:{hashlib.sha256(raw).hexdigest()}", source=source,
                        raw=raw, subject=f"(could not import {label[-150:]})",
                        quarantine_reason=f"import: {type(exc).__name__}: {str(exc)[:200]}")


def _count(summary: Summary, result: Received, message: Message | None) -> None:
    if result.duplicate:
        summary.duplicates += 1
        return
    summary.received += 1
    summary.message_ids.append(result.message_id)
    reason = result.quarantined or (message.status_reason if message is not None and
                                    message.status == MessageStatus.QUARANTINED else None)
    if reason:
        summary.quarantined += 1
        summary.reasons[reason_key(reason)] += 1


def _import_chunk(session: Session, batch: list[tuple[str, bytes]], adapter: Adapter, source: str,
                  max_bytes: int, rules: Rules | None, summary: Summary) -> None:
    incomings = [_incoming(adapter, label, raw, source) for label, raw in batch]
    part = Summary()
    try:
        cache: dict[str, bytes] = {}
        created: dict[str, Constituent] = {}
        results = receive_many(session, incomings, max_bytes=max_bytes, raw_cache=cache)
        known = _known_senders(session, [r.message for r in results if r.message is not None])
        started = [(result, None if result.duplicate or result.quarantined else
                    result.message if result.message is not None else get_message(session, result.message_id))
                   for result in results]
        run([m for _r, m in started if m is not None],
            Context(session, rules or Rules(), raw_cache=cache, created=created, known_emails=known))
        for result, message in started:
            _count(part, result, message)
        session.commit()
    except Exception:
        session.rollback()
        log.warning("batch of %d failed; importing it one by one", len(batch), exc_info=True)
        part = Summary()
        for (label, raw), incoming in zip(batch, incomings, strict=True):
            _import_one(session, label, raw, incoming, source, max_bytes, rules, part)
        session.commit()
    _merge(summary, part)


def _known_senders(session: Session, messages: list[Message]) -> dict[str, int | None]:
    """One query for the whole chunk's sender addresses instead of one per message."""
    addresses = {a for a in ((((m.facts or {}).get("constituent") or {}).get("email") or m.from_address or "")
                             .strip().lower() for m in messages) if a}
    if not addresses:
        return {}
    found = dict(session.execute(select(ConstituentEmail.address, ConstituentEmail.constituent_id)
                                 .where(ConstituentEmail.address.in_(addresses))).all())
    return {a: found.get(a) for a in addresses}


def _import_one(session: Session, label: str, raw: bytes, incoming: Incoming, source: str, max_bytes: int,
                rules: Rules | None, summary: Summary) -> None:
    try:
        with session.begin_nested():
            result = receive(session, incoming, max_bytes=max_bytes)
            message = None
            if not result.duplicate and not result.quarantined:
                message = process_message(session, result.message_id, rules=rules)
        _count(summary, result, message)
    except Exception as exc:
        log.exception("import failed path=%s", label)
        try:
            with session.begin_nested():
                fallback = Incoming(channel=Channel.EMAIL, key=f"failed:{hashlib.sha256(raw).hexdigest()}",
                                    source=source, raw=raw, subject=f"(could not import {label[-150:]})",
                                    quarantine_reason=f"import: {type(exc).__name__}: {str(exc)[:200]}")
                result = receive(session, fallback, max_bytes=max_bytes)
            _count(summary, result, None)
        except Exception:
            summary.failed += 1
            summary.reasons[reason_key(f"failed: {type(exc).__name__}")] += 1


def _merge(total: Summary, part: Summary) -> None:
    total.received += part.received
    total.duplicates += part.duplicates
    total.quarantined += part.quarantined
    total.failed += part.failed
    total.reasons.update(part.reasons)
    total.message_ids.extend(part.message_ids)
