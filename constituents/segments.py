"""Segments: saved filters on constituents, with live counts, CSV export and a follow-up letter.

A filter is plain data (kept as JSON on the segment). Conditions on the person (ZIP, city, district,
tags) and on what they wrote (topics, stance, batch, a date range — all on the *same* message, so
"opposed the farm bill this spring" means one letter that did all three) combine with AND. Merged-away
records are never counted: everything they held lives on the record they were merged into.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql import Select

from constituents.records import FIND_MAX, find_conditions
from constituents.values import parse_zip
from correspondence.errors import NotFound, ValidationFailed
from correspondence.ids import parse_id
from correspondence.models import (
    Batch,
    Channel,
    Constituent,
    ConstituentEmail,
    ConstituentTag,
    Direction,
    DistrictStatus,
    LetterVersion,
    Message,
    MessageStatus,
    Segment,
    Stance,
    Suppression,
    Topic,
)
from correspondence.services.audit import record
from outbound import franking


def _zip5s(text: str) -> tuple[tuple[str, ...], list[str]]:
    """The 5-digit ZIPs a filter names (12345 or 12345-6789, read by constituents.values) and the bad ones."""
    good: list[str] = []
    bad: list[str] = []
    for word in re.split(r"[\s,;]+", text):
        try:
            code = parse_zip(word)
        except ValidationFailed:
            bad.append(word)
            continue
        if code is not None:
            good.append(code.zip5)
    return tuple(dict.fromkeys(good)), bad


@dataclass(frozen=True)
class SegmentFilter:
    zips: tuple[str, ...] = ()
    city: str = ""
    district: str = ""  # a DistrictStatus value, or "" for any
    topic_ids: tuple[int, ...] = ()
    stance: str = ""  # a Stance value, or ""
    batch_id: int | None = None
    active_from: date | None = None
    active_to: date | None = None
    tags: tuple[str, ...] = ()
    find: str = ""  # the "find a person" box: name, email, phone, street or ZIP (constituents.find_conditions)

    @property
    def is_empty(self) -> bool:
        return self == SegmentFilter()

    @property
    def on_messages(self) -> bool:
        return bool(self.topic_ids or self.stance or self.batch_id or self.active_from or self.active_to)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["active_from"] = self.active_from.isoformat() if self.active_from else None
        data["active_to"] = self.active_to.isoformat() if self.active_to else None
        data["zips"], data["topic_ids"], data["tags"] = list(self.zips), list(self.topic_ids), list(self.tags)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SegmentFilter:
        return cls(zips=tuple(data.get("zips") or ()), city=data.get("city") or "",
                   district=data.get("district") or "", topic_ids=tuple(int(t) for t in data.get("topic_ids") or ()),
                   stance=data.get("stance") or "", batch_id=data.get("batch_id"),
                   active_from=date.fromisoformat(data["active_from"]) if data.get("active_from") else None,
                   active_to=date.fromisoformat(data["active_to"]) if data.get("active_to") else None,
                   tags=tuple(data.get("tags") or ()), find=data.get("find") or "")

    def describe(self, topic_names: Mapping[int, str] | None = None) -> str:
        names = topic_names or {}
        parts = [f"matching “{self.find}”"] if self.find else []
        if self.zips:
            parts.append("ZIP " + ", ".join(self.zips))
        if self.city:
            parts.append(f"city {self.city}")
        if self.district:
            parts.append(self.district.replace("_", " "))
        wrote = []
        if self.topic_ids:
            wrote.append("about " + " or ".join(names.get(t, f"topic {t}") for t in self.topic_ids))
        if self.stance:
            wrote.append(f"in {self.stance}")
        if self.batch_id:
            wrote.append(f"in batch {self.batch_id}")
        if self.active_from or self.active_to:
            wrote.append(f"between {self.active_from or 'the start'} and {self.active_to or 'today'}")
        if wrote:
            parts.append("wrote " + " ".join(wrote))
        if self.tags:
            parts.append("tagged " + " or ".join(self.tags))
        return "; ".join(parts) or "everyone"


def parse_filter(form: Mapping[str, str], *, topic_ids: Sequence[str] | None = None) -> SegmentFilter:
    """A filter from plain values (the web layer hands over a query's fields, never the request:
    web.inputs.segment_filter); topic_ids are the chosen topics when several may be; anything unusable
    is refused with the reason."""
    problems: list[str] = []
    zips, bad = _zip5s(form.get("zips", "") or "")
    if bad:
        problems.append("ZIP codes must be 5 digits: " + ", ".join(bad[:5]))
    district = (form.get("district") or "").strip()
    if district and district not in {d.value for d in DistrictStatus}:
        problems.append("district must be in_district, out_of_district or unknown")
    stance = (form.get("stance") or "").strip()
    if stance and stance not in {s.value for s in Stance}:
        problems.append("stance must be support, oppose or neutral")
    chosen_topics: list[int] = []
    for raw in topic_ids if topic_ids is not None else [form.get("topic_id", "")]:
        if raw:
            if (topic_id := parse_id(raw.strip())) is None:
                problems.append(f"{raw[:40]!r} is not a topic")
            else:
                chosen_topics.append(topic_id)
    batch_id = None
    if (form.get("batch_id") or "").strip():
        batch_id = parse_id(form["batch_id"].strip())
        if batch_id is None:
            problems.append("batch must be a batch number")
    dates: dict[str, date | None] = {}
    for key in ("active_from", "active_to"):
        value = (form.get(key) or "").strip()
        try:
            dates[key] = date.fromisoformat(value) if value else None
        except ValueError:
            problems.append(f"{key.replace('_', ' ')} must be a date like 2026-03-01")
            dates[key] = None
    if dates["active_from"] and dates["active_to"] and dates["active_from"] > dates["active_to"]:
        problems.append("the activity range ends before it starts")
    tags = tuple(dict.fromkeys(t.strip().lower() for t in (form.get("tags") or "").split(",") if t.strip()))
    city = (form.get("city") or "").strip()[:100]
    find = " ".join((form.get("find") or "").split())[:FIND_MAX]
    if problems:
        raise ValidationFailed("; ".join(problems))
    return SegmentFilter(zips=zips, city=city, district=district, topic_ids=tuple(dict.fromkeys(chosen_topics)),
                         stance=stance, batch_id=batch_id, active_from=dates["active_from"],
                         active_to=dates["active_to"], tags=tags, find=find)


def message_conditions(flt: SegmentFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [Message.constituent_id.is_not(None),
                                             Message.direction == Direction.INBOUND]
    if flt.topic_ids:
        conditions.append(Message.topic_id.in_(flt.topic_ids))
    if flt.stance:
        conditions.append(Message.stance == Stance(flt.stance))
    if flt.batch_id:
        conditions.append(Message.batch_id == flt.batch_id)
    if flt.active_from:
        conditions.append(Message.received_at >= datetime.combine(flt.active_from, time.min, UTC))
    if flt.active_to:
        conditions.append(Message.received_at < datetime.combine(flt.active_to + timedelta(days=1), time.min, UTC))
    return conditions


_Query = TypeVar("_Query", bound="Select[*tuple[Any, ...]]")


def apply_filter(query: _Query, flt: SegmentFilter) -> _Query:
    # "+ 0" keeps SQLite from walking the merged_into_id index (nearly every row is NULL) in id order;
    # it then starts from the selective condition (a ZIP, an email, a phone, the page's id range).
    query = query.where((Constituent.merged_into_id + 0).is_(None))
    if flt.zips:
        query = query.where(Constituent.zip5.in_(flt.zips))
    if flt.city:
        query = query.where(func.lower(Constituent.city) == flt.city.lower())
    if flt.district:
        query = query.where(Constituent.district_status == DistrictStatus(flt.district))
    if flt.tags:
        query = query.where(Constituent.id.in_(select(ConstituentTag.constituent_id)
                                               .where(ConstituentTag.tag.in_(flt.tags))))
    if flt.on_messages:
        query = query.where(Constituent.id.in_(select(Message.constituent_id).where(*message_conditions(flt))))
    if flt.find:
        query = query.where(*find_conditions(flt.find))
    return query


def count(session: Session, flt: SegmentFilter) -> int:
    return session.scalar(apply_filter(select(func.count()).select_from(Constituent), flt)) or 0


def members(session: Session, flt: SegmentFilter, *, limit: int = 50, after_id: int = 0) -> list[Constituent]:
    """One page of the segment, by record number (keyset: the page after `after_id`)."""
    query = apply_filter(select(Constituent), flt).where(Constituent.id > after_id).order_by(Constituent.id)
    return list(session.scalars(query.limit(limit).options(selectinload(Constituent.emails),
                                                           selectinload(Constituent.tags))))


def member_ids(session: Session, flt: SegmentFilter) -> list[int]:
    return list(session.scalars(apply_filter(select(Constituent.id), flt).order_by(Constituent.id)))


CSV_HEADER = ("id", "prefix", "first_name", "last_name", "email", "phone", "address1", "address2", "city",
              "state", "zip", "district", "tags")


def csv_rows(session: Session, flt: SegmentFilter) -> Iterator[tuple[object, ...]]:
    """Every member as a CSV row, read in pages so a 250,000-person segment never sits in memory."""
    after = 0
    while True:
        page = list(session.scalars(
            apply_filter(select(Constituent), flt).where(Constituent.id > after).order_by(Constituent.id)
            .limit(2000).options(selectinload(Constituent.emails), selectinload(Constituent.phones),
                                 selectinload(Constituent.tags))))
        if not page:
            return
        for c in page:
            zip_code = f"{c.zip5}-{c.zip4}" if c.zip5 and c.zip4 else (c.zip5 or "")
            yield (c.id, c.prefix, c.first_name, c.last_name, "; ".join(e.address for e in c.emails),
                   "; ".join(p.number for p in c.phones), c.address1, c.address2, c.city, c.state, zip_code,
                   c.district_status.value, ", ".join(t.tag for t in c.tags))
        after = page[-1].id
        session.expunge_all()


# --- saved segments ---------------------------------------------------------------------------

def get_segment(session: Session, segment_id: int) -> Segment:
    segment = session.get(Segment, segment_id)
    if segment is None:
        raise NotFound(f"no segment {segment_id}")
    return segment


def check_references(session: Session, flt: SegmentFilter) -> None:
    if flt.batch_id and session.get(Batch, flt.batch_id) is None:
        raise ValidationFailed(f"there is no batch {flt.batch_id}")
    if flt.topic_ids:
        found = set(session.scalars(select(Topic.id).where(Topic.id.in_(flt.topic_ids))))
        missing = [t for t in flt.topic_ids if t not in found]
        if missing:
            raise ValidationFailed(f"there is no topic {missing[0]}")


def save_segment(session: Session, name: str, flt: SegmentFilter, *, actor_id: int,
                 segment_id: int | None = None) -> Segment:
    name = name.strip()
    if not name:
        raise ValidationFailed("give the segment a name")
    if len(name) > 200:
        raise ValidationFailed("the name is longer than 200 characters")
    check_references(session, flt)
    if segment_id is None:
        segment = Segment(name=name, filters=flt.to_dict(), created_by_id=actor_id)
        session.add(segment)
        session.flush()
        record(session, actor_id=actor_id, action="segment.create", object_type="segment", object_id=segment.id,
               after={"name": name, "filters": flt.to_dict()})
    else:
        segment = get_segment(session, segment_id)
        before = {"name": segment.name, "filters": segment.filters}
        segment.name, segment.filters = name, flt.to_dict()
        record(session, actor_id=actor_id, action="segment.edit", object_type="segment", object_id=segment.id,
               before=before, after={"name": name, "filters": flt.to_dict()})
    return segment


def delete_segment(session: Session, segment_id: int, *, actor_id: int) -> None:
    segment = get_segment(session, segment_id)
    record(session, actor_id=actor_id, action="segment.delete", object_type="segment", object_id=segment.id,
           before={"name": segment.name, "filters": segment.filters})
    session.delete(segment)


def list_segments(session: Session) -> list[Segment]:
    return list(session.scalars(select(Segment).order_by(Segment.name)))


# --- follow-up to a segment -------------------------------------------------------------------

def follow_up_messages(session: Session, segment: Segment, version_id: int, subject: str, *,
                       actor_id: int) -> list[int]:
    """One outbound follow-up record per member, for the apply-to-all run to answer.

    Each member gets a message of their own on their timeline (direction outbound, "Follow-up: …"),
    which the run turns into one rendered letter by email (when they have an address) or by post.
    The key names the segment, the version and the person, so asking twice creates nothing twice.
    """
    flt = SegmentFilter.from_dict(segment.filters)
    ids: list[int] = []
    now = datetime.now(UTC)
    existing_keys: dict[str, int] = {}
    prefix = f"followup:{segment.id}:{version_id}:"
    for key, mid in session.execute(select(Message.idempotency_key, Message.id)
                                    .where(Message.idempotency_key.like(prefix + "%"))):
        existing_keys[key] = mid
    after = 0
    while True:
        people = list(session.scalars(apply_filter(select(Constituent), flt).where(Constituent.id > after)
                                      .order_by(Constituent.id).limit(1000)
                                      .options(selectinload(Constituent.emails))))
        if not people:
            break
        new = []
        for person in people:
            key = f"{prefix}{person.id}"
            if key in existing_keys:
                ids.append(existing_keys[key])
                continue
            email = person.primary_email
            new.append(Message(idempotency_key=key, direction=Direction.OUTBOUND,
                               channel=Channel.EMAIL if email else Channel.POSTAL, received_at=now,
                               from_name=person.full_name, from_address=email, subject=subject[:500],
                               body_text="", constituent_id=person.id, status=MessageStatus.IN_PROGRESS,
                               processed_at=now, source=f"segment:{segment.id}"))
        session.add_all(new)
        session.flush()
        ids.extend(m.id for m in new)
        after = people[-1].id
    record(session, actor_id=actor_id, action="segment.follow_up", object_type="segment", object_id=segment.id,
           after={"version_id": version_id, "people": len(ids)})
    return ids


def follow_up_plan(session: Session, flt: SegmentFilter, *, rules: franking.Rules | None = None,
                   version: LetterVersion | None = None, today: date | None = None) -> dict[str, object]:
    """The dry run of a follow-up: how many would get email, a printed letter, or nothing (no address), and
    the mass-communication guard's verdict on sending them ``version`` (a follow-up is unsolicited)."""
    people = apply_filter(select(Constituent.id), flt).subquery()
    total = session.scalar(select(func.count()).select_from(people)) or 0
    with_email = session.scalar(select(func.count(func.distinct(ConstituentEmail.constituent_id)))
                                .where(ConstituentEmail.constituent_id.in_(select(people.c.id)))) or 0
    postal = session.scalar(select(func.count()).select_from(Constituent).where(
        Constituent.id.in_(select(people.c.id)), Constituent.address1.is_not(None), Constituent.city.is_not(None),
        Constituent.state.is_not(None), Constituent.zip5.is_not(None),
        ~Constituent.id.in_(select(ConstituentEmail.constituent_id)))) or 0
    # People whose email (the first on their record, the one a follow-up uses) gets no follow-ups.
    first_email = select(func.min(ConstituentEmail.id)).where(
        ConstituentEmail.constituent_id.in_(select(people.c.id))).group_by(ConstituentEmail.constituent_id)
    suppressed = {reason: n for reason, n in session.execute(
        select(Suppression.reason, func.count())
        .join(ConstituentEmail, func.lower(func.trim(ConstituentEmail.address)) == Suppression.address)
        .where(ConstituentEmail.id.in_(first_email), Suppression.reason.is_not(None))
        .group_by(Suppression.reason)) if reason is not None}
    held = sum(suppressed.values())
    rules = rules or franking.Rules()
    letter_id = version.letter_id if version else None
    # Letters by email and by post are the pieces the start will count, by the same rule
    # (franking.follow_up_counts / unsolicited_pieces): one number on the page and in a refusal.
    counts = franking.follow_up_counts(session, select(people.c.id), letter_id=letter_id)
    verdict = franking.check(session, letter_id=letter_id, version_id=version.id if version else None,
                             pieces=counts.pieces, rules=rules, today=today or rules.today())
    return {"total": total, "email": counts.email, "print": counts.post, "no_address": total - with_email - postal,
            "already_sent": counts.already_sent, "answered": 0, "cannot": 0, "suppressed": held,
            "suppressed_by": {reason.value: n for reason, n in sorted(suppressed.items())},
            "franking": verdict, "franking_letter": version.letter.title if version else None}


def topic_names(session: Session) -> dict[int, str]:
    return dict(session.execute(select(Topic.id, Topic.name)).all())

