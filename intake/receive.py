"""Persisting raw input exactly once: the step every adapter takes before it acknowledges its source."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from correspondence.effects import Done, Effect
from correspondence.models import Channel, Message, MessageStatus, Stance, utcnow
from correspondence.services.audit import record, record_many
from correspondence.services.blobs import store_blob, store_blobs
from correspondence.services.messages import quarantine_message
from intake.sanitise import one_line, one_line_person

# Oversized input is quarantined, not dropped: this much of it is kept for a person to look at.
KEEP_OF_OVERSIZED = 1024 * 1024


@dataclass(frozen=True)
class Received:
    message_id: int
    duplicate: bool
    quarantined: str | None = None
    message: Message | None = None  # the new row, when the caller wants to go on working with it

    @property
    def effects(self) -> tuple[Effect, ...]:
        """After the commit: process a newly stored message (a duplicate was queued when it first came;
        a quarantined one waits for a person)."""
        if self.duplicate or self.quarantined:
            return ()
        return (Effect.of("process_message", self.message_id),)


@dataclass
class Incoming:
    """What an adapter knows about one item before processing."""

    channel: Channel
    key: str
    source: str
    raw: bytes | None = None
    content_type: str = "application/octet-stream"
    received_at: datetime | None = None
    subject: str = ""
    body_text: str = ""
    body_html: str | None = None
    from_name: str | None = None
    from_address: str | None = None
    external_id: str | None = None
    campaign_id: str | None = None
    organization: str | None = None
    organization_statement: str | None = None
    delivery_agent: str | None = None
    stance: Stance | None = None
    facts: dict | None = None
    quarantine_reason: str | None = None

    def __post_init__(self) -> None:
        # Every adapter (email, web form, CWC, social, phone, scans) builds one of these, so this is
        # the one place subjects and names lose their line breaks; the raw input keeps them.
        self.subject = one_line(self.subject) or ""
        self.from_name = one_line(self.from_name)
        if self.facts and isinstance(self.facts.get("constituent"), dict):
            self.facts = {**self.facts, "constituent": one_line_person(self.facts["constituent"])}


def _build(item: Incoming, max_bytes: int) -> tuple[Message, bytes | None, str | None]:
    """The message row for an item, the raw bytes to keep, and a quarantine reason if any."""
    reason = item.quarantine_reason
    raw = item.raw
    if raw is not None and len(raw) > max_bytes:
        reason = (f"the input is {len(raw) / 1048576:.1f} MB, over the {max_bytes / 1048576:.0f} MB limit; "
                  f"the first {KEEP_OF_OVERSIZED // 1024} KB are kept")
        raw = raw[:KEEP_OF_OVERSIZED]
    # Every text field is cut to its column when the row is written (correspondence.models.fit),
    # and the message notes which; the idempotency key is cut here because look-ups use it first.
    message = Message(
        idempotency_key=item.key[:255], channel=item.channel, received_at=item.received_at or utcnow(),
        subject=item.subject or "", body_text=item.body_text or "", body_html=item.body_html,
        from_name=item.from_name or None, from_address=item.from_address or None, source=item.source,
        external_id=item.external_id or None, campaign_id=item.campaign_id or None,
        organization=item.organization or None, organization_statement=item.organization_statement,
        delivery_agent=item.delivery_agent or None, stance=item.stance, facts=item.facts, status=MessageStatus.NEW,
    )
    return message, raw, reason


def _received(item: Incoming) -> dict[str, str]:
    return {"channel": item.channel.value, "source": item.source, "key": item.key[:200]}


def _quarantine_on_arrival(session: Session, message: Message, reason: str) -> None:
    quarantine_message(session, message.id, reason=reason, actor_id=None)
    message.processed_at = utcnow()


def _after_insert(session: Session, message: Message, item: Incoming, reason: str | None) -> None:
    record(session, actor_id=None, action="message.received", object_type="message", object_id=message.id,
           after=_received(item))
    if reason:
        _quarantine_on_arrival(session, message, reason)


def receive(session: Session, item: Incoming, *, max_bytes: int) -> Received:
    """Store one item with its idempotency key; a second delivery of the same key creates nothing."""
    existing = session.scalar(select(Message.id).where(Message.idempotency_key == item.key[:255]))
    if existing is not None:
        return Received(existing, duplicate=True)
    message, raw, reason = _build(item, max_bytes)
    try:
        with session.begin_nested():
            if raw is not None:
                message.raw_sha256 = store_blob(session, raw, item.content_type)
            session.add(message)
            session.flush()
    except IntegrityError:
        # Another process stored the same key between our check and our insert.
        existing = session.scalar(select(Message.id).where(Message.idempotency_key == item.key[:255]))
        if existing is None:
            raise
        return Received(existing, duplicate=True)
    _after_insert(session, message, item, reason)
    return Received(message.id, duplicate=False, quarantined=reason)


def receive_many(session: Session, items: list[Incoming], *, max_bytes: int,
                 raw_cache: dict[str, bytes] | None = None) -> list[Received]:
    """Store a batch in a few statements: one look-up of known keys and blobs, one flush of inserts.

    Raises on any database error; the caller then falls back to receive() one item at a time.
    """
    keys = [item.key[:255] for item in items]
    known = dict(session.execute(select(Message.idempotency_key, Message.id)
                                 .where(Message.idempotency_key.in_(set(keys)))).all())
    built: dict[str, tuple[Message, Incoming, str | None]] = {}
    raws: list[tuple[Message, bytes, str]] = []
    for key, item in zip(keys, items, strict=True):
        if key in known or key in built:
            continue
        message, raw, reason = _build(item, max_bytes)
        if raw is not None:
            raws.append((message, raw, item.content_type))
        built[key] = (message, item, reason)
    digests = store_blobs(session, ((raw, ctype) for _m, raw, ctype in raws))
    for (message, raw, _ctype), digest in zip(raws, digests, strict=True):
        message.raw_sha256 = digest
        if raw_cache is not None:
            raw_cache[digest] = raw
    session.add_all(m for m, _i, _r in built.values())
    session.flush()
    record_many(session, actor_id=None, action="message.received", object_type="message", events=[
        (m.id, _received(i)) for m, i, _r in built.values()])
    for message, _item, reason in built.values():
        if reason:
            _quarantine_on_arrival(session, message, reason)
    results = []
    first_seen: set[str] = set()
    for key in keys:
        if key in known:
            results.append(Received(known[key], duplicate=True))
        elif key in first_seen:
            results.append(Received(built[key][0].id, duplicate=True))
        else:
            first_seen.add(key)
            message, _item, reason = built[key]
            results.append(Received(message.id, duplicate=False, quarantined=reason, message=message))
    return results


def unfinished(session: Session, older_than: timedelta) -> list[int]:
    """Messages stored but never processed, older than the grace period (their job was lost)."""
    cutoff = utcnow() - older_than
    return list(session.scalars(
        select(Message.id).where(Message.processed_at.is_(None), Message.created_at < cutoff,
                                 Message.status != MessageStatus.QUARANTINED)
        .order_by(Message.id).limit(10_000)
    ))


def requeue_unfinished(session: Session, *, older_than: timedelta) -> Done[int]:
    """The sweep's intake part: process again every message whose job was lost (processing is
    idempotent, and a second enqueue of a waiting message is a no-op)."""
    ids = unfinished(session, older_than)
    return Done(len(ids), (Effect.of("process_message", *ids),) if ids else ())
