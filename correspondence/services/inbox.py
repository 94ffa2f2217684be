"""The triage inbox query: filters, sort and keyset pagination that stay fast on a large mailbox."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, TypeVar

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.sql import Select

from correspondence.errors import ValidationFailed
from correspondence.ids import parse_id
from correspondence.models import (
    OPEN_STATUSES,
    AuditEvent,
    Channel,
    Direction,
    Message,
    MessageStatus,
    Stance,
    utcnow,
)
from correspondence.services.audit import record
from correspondence.services.messages import assign_message, get_message, set_stance, set_topic, unassign_message

SORTS = ("newest", "oldest")


@dataclass(frozen=True)
class InboxFilter:
    """What the staffer asked to see; the web layer parses and validates the query string into it."""

    statuses: tuple[MessageStatus, ...] = OPEN_STATUSES
    channel: Channel | None = None
    topic_id: int | None = None
    uncoded: bool = False
    assignee_id: int | None = None
    unassigned: bool = False
    received_from: date | None = None
    received_to: date | None = None
    text: str = ""
    sort: str = "newest"
    # "From" and "to" dates are the office's calendar days (MAILROOM_TIMEZONE), not UTC days.
    zone: tzinfo = UTC


@dataclass(frozen=True)
class Cursor:
    received_at: datetime
    id: int

    def encode(self) -> str:
        raw = f"{self.received_at.isoformat()}|{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            stamp, ident = raw.split("|")
            received_at = datetime.fromisoformat(stamp)
            if received_at.tzinfo is None:
                raise ValueError("naive")
            ident_id = parse_id(ident)
            if ident_id is None:
                raise ValueError("not an id")
            return cls(received_at.astimezone(UTC), ident_id)
        except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError) as exc:
            raise ValidationFailed("that page link is not valid; start again from the first page") from exc


@dataclass
class InboxPage:
    messages: list[Message]
    next_cursor: str | None
    counts: dict[str, int] = field(default_factory=dict)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_Query = TypeVar("_Query", bound="Select[*tuple[Any, ...]]")


def _apply_filters(query: _Query, flt: InboxFilter, *, with_status: bool = True) -> _Query:
    if with_status and flt.statuses and len(flt.statuses) < len(MessageStatus):
        query = query.where(Message.status.in_(flt.statuses))
    if flt.channel is not None:
        query = query.where(Message.channel == flt.channel)
    if flt.uncoded:
        query = query.where(Message.topic_id.is_(None))
    elif flt.topic_id is not None:
        query = query.where(Message.topic_id == flt.topic_id)
    if flt.unassigned:
        query = query.where(Message.assignee_id.is_(None))
    elif flt.assignee_id is not None:
        query = query.where(Message.assignee_id == flt.assignee_id)
    if flt.received_from is not None:
        query = query.where(Message.received_at >= datetime.combine(flt.received_from, time.min, flt.zone))
    if flt.received_to is not None:
        end = datetime.combine(flt.received_to + timedelta(days=1), time.min, flt.zone)
        query = query.where(Message.received_at < end)
    text = flt.text.strip()
    if text:
        pattern = f"%{_escape_like(text)}%"
        query = query.where(or_(
            Message.subject.ilike(pattern, escape="\\"),
            Message.from_address.ilike(pattern, escape="\\"),
            Message.from_name.ilike(pattern, escape="\\"),
            Message.body_text.ilike(pattern, escape="\\"),
        ))
    return query


def list_inbox(session: Session, flt: InboxFilter, *, after: str | None = None,
               page_size: int = 50, with_counts: bool = True) -> InboxPage:
    """One page of the inbox, newest (or oldest) first, continuing after an opaque cursor."""
    if flt.sort not in SORTS:
        raise ValidationFailed(f"sort must be one of {', '.join(SORTS)}")
    # Outbound records (a segment's follow-up letters) are not mail to triage.
    query = _apply_filters(select(Message), flt).where(Message.direction == Direction.INBOUND)
    newest = flt.sort == "newest"
    if after:
        cur = Cursor.decode(after)
        if newest:
            query = query.where(or_(Message.received_at < cur.received_at,
                                    and_(Message.received_at == cur.received_at, Message.id < cur.id)))
        else:
            query = query.where(or_(Message.received_at > cur.received_at,
                                    and_(Message.received_at == cur.received_at, Message.id > cur.id)))
    order = (Message.received_at.desc(), Message.id.desc()) if newest else (
        Message.received_at.asc(), Message.id.asc())
    query = query.order_by(*order).limit(page_size + 1).options(
        joinedload(Message.assignee), joinedload(Message.topic), joinedload(Message.constituent))
    rows = list(session.scalars(query).unique())
    next_cursor = None
    if len(rows) > page_size:
        rows = rows[:page_size]
        last = rows[-1]
        next_cursor = Cursor(last.received_at, last.id).encode()
    counts = count_by_status(session, flt) if with_counts else {}
    return InboxPage(rows, next_cursor, counts)


def count_by_status(session: Session, flt: InboxFilter) -> dict[str, int]:
    """How many messages each status filter would show, with the other filters applied."""
    query = _apply_filters(select(Message.status, func.count()), flt, with_status=False)
    counts = {s.value: 0 for s in MessageStatus}
    for status, n in session.execute(query.group_by(Message.status)):
        counts[MessageStatus(status).value] = n
    counts["all"] = sum(counts.values())
    counts["open"] = sum(counts[s.value] for s in OPEN_STATUSES)
    return counts


def matching_ids(session: Session, flt: InboxFilter, limit: int = 200_000) -> list[int]:
    """Every message the filter matches (not one page): what "answer all matching" answers."""
    return list(session.scalars(_apply_filters(select(Message.id), flt).where(Message.direction == Direction.INBOUND)
                                .order_by(Message.id).limit(limit)))


def export_rows(session: Session, flt: InboxFilter, page: int = 2000) -> Iterator[tuple[object, ...]]:
    """Every matching message as a row, read in pages by id so a large export never sits in memory.

    Times are the office's wall-clock time (the filter's zone), with its offset."""
    after = 0
    while True:
        rows = list(session.scalars(_apply_filters(select(Message), flt)
                                    .where(Message.direction == Direction.INBOUND, Message.id > after)
                                    .order_by(Message.id).limit(page)
                                    .options(joinedload(Message.assignee), joinedload(Message.topic))).unique())
        if not rows:
            return
        for m in rows:
            received = m.received_at.astimezone(flt.zone).isoformat(timespec="minutes")
            yield (m.id, received, m.channel.label, m.from_name, m.from_address,
                   m.subject, m.status.value, m.topic.name if m.topic else "", m.stance.value if m.stance else "",
                   m.assignee.name if m.assignee else "", m.constituent_id or "", m.batch_id or "")
        after = rows[-1].id
        session.expunge_all()


def neighbours(session: Session, flt: InboxFilter, message: Message) -> tuple[int | None, int | None]:
    """The messages just above and below this one in the list the staffer came from (same filter, same sort).

    Keyset on (received_at, id), so it is two index lookups however long the list; the message itself
    need not still match the filter (assigning it may have taken it out of "unassigned")."""
    base = _apply_filters(select(Message.id), flt).where(Message.direction == Direction.INBOUND)
    earlier = or_(Message.received_at < message.received_at,
                  and_(Message.received_at == message.received_at, Message.id < message.id))
    later = or_(Message.received_at > message.received_at,
                and_(Message.received_at == message.received_at, Message.id > message.id))
    down = (Message.received_at.desc(), Message.id.desc())
    up = (Message.received_at.asc(), Message.id.asc())
    if flt.sort == "newest":  # further down a newest-first list is further back in time
        below, above = base.where(earlier).order_by(*down), base.where(later).order_by(*up)
    else:
        below, above = base.where(later).order_by(*up), base.where(earlier).order_by(*down)
    return session.scalar(above.limit(1)), session.scalar(below.limit(1))


def triage(session: Session, message_id: int, *, topic_id: int | None, stance: Stance | None,
           assignee_id: int | None, actor_id: int) -> Message:
    """Code topic and stance and assign (or unassign) in one step; each change is its own audited move.

    Saving the form with the model's topic still chosen confirms it (the person saw it and kept it).
    "Nobody" on a message that has an assignee unassigns it through the unassign service."""
    message = get_message(session, message_id)
    set_topic(session, message_id, topic_id, actor_id=actor_id)
    set_stance(session, message_id, stance, actor_id=actor_id)
    if assignee_id is None:
        if message.assignee_id is not None:
            unassign_message(session, message_id, actor_id=actor_id)
    elif assignee_id != message.assignee_id:
        assign_message(session, message_id, assignee_id, actor_id=actor_id)
    return message


# How long a staffer may take back a close ("e") they made.
UNDO_WINDOW = timedelta(minutes=10)


def undo_close(session: Session, message_ids: Iterable[int], *, actor_id: int, now: datetime | None = None,
               window: timedelta = UNDO_WINDOW) -> tuple[int, list[str]]:
    """Take back closes this staffer made within the window: each message gets the status the close replaced.

    This is the close undone, not a new move through the workflow (closed mail otherwise only goes on to
    "in progress" or "archived"), so it holds only while the close is the last thing that happened to the
    message; anything since (a reopen, an answer) and the close stands. Messages this staffer did not just
    close are left alone. Returns (restored, problems)."""
    now = now or utcnow()
    restored, problems = 0, []
    for message_id in sorted(set(message_ids))[:500]:
        close = session.scalar(select(AuditEvent).where(
            AuditEvent.object_type == "message", AuditEvent.object_id == str(message_id),
            AuditEvent.action == "message.close", AuditEvent.actor_id == actor_id,
            AuditEvent.at >= now - window).order_by(AuditEvent.id.desc()).limit(1))
        if close is None:
            continue
        later = session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.object_type == "message", AuditEvent.object_id == str(message_id),
            AuditEvent.id > close.id))
        message = session.get(Message, message_id)
        previous = (close.before or {}).get("status")
        if later or message is None or message.status != MessageStatus.CLOSED or previous is None:
            problems.append(f"message {message_id} changed after it was closed, so it stays as it is now")
            continue
        message.status = MessageStatus(previous)
        message.status_reason = None
        record(session, actor_id=actor_id, action="message.undo_close", object_type="message",
               object_id=message_id, before={"status": MessageStatus.CLOSED.value}, after={"status": previous},
               detail="close undone")
        restored += 1
    return restored, problems
