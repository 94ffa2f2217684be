"""Correspondence history from another system (docs/vendor-import.md): the second of the two tables every
constituent-management vendor exports, after the constituent list.

Each row of the history CSV (date, direction in/out, channel, subject, body or summary, topic, and who: the
vendor's constituent key and/or the person's own email, name and address) becomes a message on the matched
constituent's record, stored as history (status "archived": it is not work for the inbox), incoming or outgoing.
Who the row is from is decided by the office's one rule (constituents.identity.find_or_create); when the row
only carries the vendor's key, the constituent CSV of the same export (the `people` file) supplies that
person's facts. The files are read with the CSV import's own reader (constituents.imports: encoding, delimiter,
spreadsheet ZIPs, formulas refused), and every row ends up somewhere: imported, already imported (the same row
twice is one message), or reported with its reason.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from constituents.identity import Known, PersonFacts, find_or_create
from constituents.imports import EDITABLE_FIELDS, Row, _reader, decode, guess_mapping, sniff, validate_row
from correspondence.db import Database
from correspondence.errors import ValidationFailed
from correspondence.models import Channel, Direction, Message, MessageStatus, Topic, utcnow
from correspondence.services.audit import record, record_many

CHUNK = 500
# The history file's columns (lower-cased, spaces, dashes and underscores ignored) and the names vendors use.
HISTORY_COLUMNS: dict[str, frozenset[str]] = {
    "date": frozenset({"date", "datereceived", "datesent", "received", "sent", "createdate", "createddate",
                       "correspondencedate", "activitydate"}),
    "direction": frozenset({"direction", "inout", "type", "incomingoutgoing"}),
    "channel": frozenset({"channel", "method", "medium", "source", "contacttype", "mailtype"}),
    "subject": frozenset({"subject", "title", "re"}),
    "body": frozenset({"body", "text", "message", "summary", "notes", "content", "description"}),
    "topic": frozenset({"topic", "issue", "issuecode", "subjectcode", "category"}),
    "key": frozenset({"constituentid", "constituentkey", "personid", "contactid", "recordid", "vendorid", "id"}),
}
DIRECTIONS = {"in": Direction.INBOUND, "incoming": Direction.INBOUND, "inbound": Direction.INBOUND,
              "received": Direction.INBOUND, "out": Direction.OUTBOUND, "outgoing": Direction.OUTBOUND,
              "outbound": Direction.OUTBOUND, "sent": Direction.OUTBOUND, "response": Direction.OUTBOUND,
              "reply": Direction.OUTBOUND}
CHANNELS = {
    Channel.EMAIL: ("email", "e-mail", "mail (email)", "electronic mail"),
    Channel.POSTAL: ("letter", "postal", "postal mail", "usps", "mail", "paper", "fax"),
    Channel.PHONE: ("phone", "call", "telephone", "voicemail", "phone call"),
    Channel.WEBFORM: ("web", "webform", "web form", "website", "form", "iq form", "online form"),
    Channel.CWC: ("cwc", "communicating with congress"),
    Channel.WALK_IN: ("walk-in", "walk in", "visit", "meeting", "in person", "office visit", "event"),
    Channel.SOCIAL: ("social", "facebook", "twitter", "x", "instagram", "social media"),
}
_CHANNEL_WORDS = {word: channel for channel, words in CHANNELS.items() for word in words}
_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M",
                 "%m/%d/%Y %I:%M %p", "%m/%d/%Y", "%m/%d/%y")


# validate_row's words for a row that names nobody: here the constituent file may name them by the key.
_NOBODY = ("no name and no email", "no last name, email or phone to know the person by")


def _column_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def history_mapping(columns: list[str]) -> dict[str, int]:
    """Which column holds each history field (first match wins); date, direction and channel are required."""
    found: dict[str, int] = {}
    for index, name in enumerate(columns):
        key = _column_key(name)
        for target, names in HISTORY_COLUMNS.items():
            if key in names and target not in found:
                found[target] = index
                break
    missing = [t for t in ("date", "direction", "channel") if t not in found]
    if missing:
        raise ValidationFailed(f"the history file has no {', '.join(missing)} column (see docs/vendor-import.md)")
    if "subject" not in found and "body" not in found:
        raise ValidationFailed("the history file needs a subject or a body/summary column")
    return found


def parse_when(text: str, zone: ZoneInfo) -> datetime:
    """A vendor's date: ISO 8601 (with or without an offset) or US month/day/year; a time without an offset is
    the office's local time."""
    value = text.strip()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        for fmt in _DATE_FORMATS:
            try:
                parsed = datetime.strptime(value, fmt)  # noqa: DTZ007 - local time, given its zone below
                break
            except ValueError:
                continue
        else:
            raise ValidationFailed(f"date {value[:40]!r} is not a date (use 2024-03-18 or 03/18/2024)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


@dataclass
class HistorySummary:
    """What the import did with every row: imported, duplicates (already imported) and bad, with reasons."""

    imported: int = 0
    duplicates: int = 0
    people_created: int = 0
    bad: list[tuple[int, str]] = field(default_factory=list)
    uncoded_topics: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        reasons: dict[str, int] = {}
        for _line, reason in self.bad:
            reasons[reason] = reasons.get(reason, 0) + 1
        return {"imported": self.imported, "duplicates": self.duplicates, "people_created": self.people_created,
                "bad": len(self.bad), "reasons": reasons, "bad_lines": [line for line, _r in self.bad[:50]],
                "topics_not_on_file": self.uncoded_topics}


def _rows(data: bytes) -> tuple[list[str], Iterator[list[str]]]:
    text, _encoding = decode(data)
    rows = _reader(text, sniff(text))
    try:
        header = [h.strip() for h in next(rows)]
    except (StopIteration, csv.Error) as exc:
        raise ValidationFailed(f"the first line is not a row of column names ({exc})") from None
    return header, rows


def read_people(data: bytes) -> dict[str, PersonFacts]:
    """The vendor's constituent file, by the vendor's key: facts for history rows that name only the key.

    Its person columns are read as the constituent CSV import reads them (constituents.imports.validate_row);
    a row with problems is left out (the constituent import reports it with its reason)."""
    header, rows = _rows(data)
    key_index = next((i for i, name in enumerate(header) if _column_key(name) in HISTORY_COLUMNS["key"]), None)
    if key_index is None:
        raise ValidationFailed("the constituent file has no key column (ConstituentID, PersonID, …) to join the "
                               "history on")
    mapping = guess_mapping(header)
    mapping.pop(str(key_index), None)
    people: dict[str, PersonFacts] = {}
    for number, cells in enumerate(rows, start=2):
        key = cells[key_index].strip() if key_index < len(cells) else ""
        row = validate_row(number, cells, mapping, header)
        if key and not row.problems:
            people[key] = _facts(row)
    return people


def _facts(row: Row) -> PersonFacts:
    return PersonFacts(email=row.emails[0] if row.emails else None, more_emails=tuple(row.emails[1:]),
                       phone=row.phone, **{k: row.values.get(k) for k in EDITABLE_FIELDS})


def _merged(own: PersonFacts, vendor: PersonFacts | None) -> PersonFacts:
    """The row's own facts, with the constituent file's filling what the row leaves empty."""
    if vendor is None:
        return own
    values = {k: getattr(own, k) or getattr(vendor, k) for k in ("email", "phone", *EDITABLE_FIELDS)}
    return PersonFacts(more_emails=own.more_emails or vendor.more_emails, **values)


@dataclass(frozen=True)
class _Item:
    line: int
    key: str
    when: datetime
    direction: Direction
    channel: Channel
    subject: str
    body: str
    topic: str
    facts: PersonFacts


def _item(number: int, cells: list[str], header: list[str], where: dict[str, int], person_mapping: dict[str, str],
          people: dict[str, PersonFacts], zone: ZoneInfo, source: str) -> _Item:
    def cell(name: str) -> str:
        index = where.get(name)
        return cells[index].strip() if index is not None and index < len(cells) else ""

    for name in ("subject", "body", "topic"):
        if cell(name).startswith("="):
            raise ValidationFailed(f"{name} looks like a spreadsheet formula")
    when = parse_when(cell("date"), zone) if cell("date") else None
    if when is None:
        raise ValidationFailed("no date")
    direction = DIRECTIONS.get(cell("direction").lower())
    if direction is None:
        raise ValidationFailed(f"direction {cell('direction')[:20]!r} is not in or out")
    channel = _CHANNEL_WORDS.get(cell("channel").lower())
    if channel is None:
        raise ValidationFailed(f"channel {cell('channel')[:30]!r} is not one Mailroom knows "
                               "(see docs/vendor-import.md)")
    subject, body = cell("subject"), cell("body")
    if not subject and not body:
        raise ValidationFailed("no subject and no body")
    person = validate_row(number, cells, person_mapping, header)
    # Who the row is from may come from the constituent file by key; whether anyone is named is decided below.
    problems = [p for p in person.problems if p not in _NOBODY]
    if problems:
        raise ValidationFailed("; ".join(problems))
    vendor_key = cell("key")
    if vendor_key and people and vendor_key not in people:
        raise ValidationFailed(f"constituent key {vendor_key[:40]!r} is not in the constituent file")
    facts = _merged(_facts(person), people.get(vendor_key))
    # The same row imported twice is one message: its key is the row's content, not its line number.
    digest = hashlib.sha256("\x1f".join((source, when.isoformat(), direction.value, channel.value, subject, body,
                                         vendor_key, facts.email or "", facts.last_name or "")).encode()).hexdigest()
    return _Item(number, f"vendor:{digest}", when, direction, channel, subject, body, cell("topic"), facts)


def _store(session: Session, items: list[_Item], known: Known, topics: dict[str, int], summary: HistorySummary,
           *, source: str, actor_id: int | None) -> None:
    known.preload(session, emails={i.facts.email for i in items if i.facts.email},
                  phones={i.facts.phone for i in items if i.facts.phone})
    existing = set(session.scalars(select(Message.idempotency_key)
                                   .where(Message.idempotency_key.in_([i.key for i in items]))))
    made: list[Message] = []
    now = utcnow()
    for item in items:
        if item.key in existing:
            summary.duplicates += 1
            continue
        match = find_or_create(session, item.facts, known=known)
        if not match.found:
            reason = ("the name and address fit several people on file: merge the duplicates first"
                      if match.method == "ambiguous" else "no email, phone or last name to know the person by")
            summary.bad.append((item.line, reason))
            continue
        summary.people_created += bool(match.created)
        topic_id = topics.get(item.topic.lower()) if item.topic else None
        if item.topic and topic_id is None:
            summary.uncoded_topics[item.topic[:100]] = summary.uncoded_topics.get(item.topic[:100], 0) + 1
        address = item.facts.email if item.channel == Channel.EMAIL else None
        name = " ".join(p for p in (item.facts.first_name, item.facts.last_name) if p) or None
        message = Message(
            idempotency_key=item.key, direction=item.direction, channel=item.channel, received_at=item.when,
            from_name=name, from_address=address, subject=item.subject, body_text=item.body,
            constituent_id=match.constituent_id, topic_id=topic_id, topic_source="import" if topic_id else None,
            status=MessageStatus.ARCHIVED, processed_at=now, source=source[:100], match_method=match.method,
            facts={"imported_from": source, "line": item.line, **({"vendor_topic": item.topic} if item.topic else {})})
        if match.constituent is not None:  # a person new in this file: linked by object, one flush for the chunk
            message.constituent = match.constituent
        made.append(message)
        existing.add(item.key)
    session.add_all(made)
    session.flush()
    known.settle()
    summary.imported += len(made)
    record_many(session, actor_id=actor_id, action="message.received", object_type="message", events=[
        (m.id, {"channel": m.channel.value, "source": source[:100], "key": m.idempotency_key[:200]}) for m in made])


def import_history(db: Database, data: bytes, *, source: str, zone: ZoneInfo, people: bytes | None = None,
                   actor_id: int | None = None) -> HistorySummary:
    """Import a correspondence-history CSV (and the constituent CSV it refers to by key, if given).

    Chunks of rows commit as they go; a re-run after a crash imports only what is missing (each row's key is
    its content). Long files belong in a job or the CLI (`mailroom import history FILE --people FILE`).
    """
    vendor_people = read_people(people) if people else {}
    header, rows = _rows(data)
    where = history_mapping(header)
    taken = {str(i) for i in where.values()}
    person_mapping = {i: t for i, t in guess_mapping(header).items() if i not in taken}
    if not vendor_people and not {"email", "last_name", "full_name", "phone"} & set(person_mapping.values()):
        raise ValidationFailed("the history file names nobody: give it the person's email or name columns, or the "
                               "constituent file its key refers to (--people)")
    summary = HistorySummary()
    known = Known()
    with db.unit_of_work() as s:
        topics = {name.lower(): topic_id for topic_id, name in s.execute(select(Topic.id, Topic.name)).all()}
    chunk: list[_Item] = []

    def flush() -> None:
        with db.unit_of_work() as s:
            _store(s, chunk, known, topics, summary, source=source, actor_id=actor_id)
        chunk.clear()

    line = 1
    try:
        for line, cells in enumerate(rows, start=2):
            if not any(c.strip() for c in cells):
                continue
            try:
                chunk.append(_item(line, cells, header, where, person_mapping, vendor_people, zone, source))
            except ValidationFailed as exc:
                summary.bad.append((line, str(exc)))
            if len(chunk) >= CHUNK:
                flush()
    except csv.Error as exc:
        summary.bad.append((line + 1, f"the file stops being CSV here: {exc}"))
    if chunk:
        flush()
    with db.unit_of_work() as s:
        total = s.scalar(select(func.count()).select_from(Message).where(Message.source == source[:100])) or 0
        record(s, actor_id=actor_id, action="history_import.finish", object_type="history_import",
               object_id=source[:64], after={"imported": summary.imported, "duplicates": summary.duplicates,
                                             "bad": len(summary.bad), "messages_from_source": total})
    return summary
