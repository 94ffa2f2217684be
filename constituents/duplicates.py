"""Duplicate constituents: candidates by phone, email and fuzzy name + address; merge and undo merge.

A merge moves every record of one person (messages, answers, cases, emails, phones, tags) to the
other and fills the kept record's blank fields from the merged one; the merged record stays, marked
``merged_into_id``, so nothing is deleted. The audit event lists exactly what moved, and undo moves
exactly that back (only what still points where the merge put it), at most once.

"Similar name and address" is scored by the one matcher (constituents.identity.name_address_score,
with its thresholds NAME_MIN 90 / ADDRESS_MIN 85 in one ZIP), so a pair offered here is a pair
intake would have joined had it met them together; shared phones and mailboxes are offered too,
because the matcher never joins on those alone when the emails differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import CursorResult, func, or_, select, update
from sqlalchemy.orm import Session, selectinload

from constituents.identity import name_address_score
from constituents.records import EDITABLE, get_constituent
from constituents.values import mailbox_key
from correspondence.errors import NotFound, ValidationFailed
from correspondence.models import (
    AuditEvent,
    Case,
    Constituent,
    ConstituentEmail,
    ConstituentPhone,
    ConstituentTag,
    Message,
    Response,
)
from correspondence.services.audit import record


@dataclass
class Candidate:
    person: Constituent
    reasons: list[str] = field(default_factory=list)
    score: int = 0


def candidates_for(session: Session, constituent_id: int, limit: int = 10) -> list[Candidate]:
    person = get_constituent(session, constituent_id)
    found: dict[int, Candidate] = {}

    def add(other: Constituent, reason: str, score: int) -> None:
        if other.id == person.id or other.merged_into_id is not None:
            return
        entry = found.setdefault(other.id, Candidate(other))
        entry.reasons.append(reason)
        entry.score = max(entry.score, score)

    numbers = [p.number for p in person.phones]
    if numbers:
        for other in session.scalars(select(Constituent).join(ConstituentPhone)
                                     .where(ConstituentPhone.number.in_(numbers))):
            add(other, "same phone", 100)
    for email in person.emails:
        key = mailbox_key(email.address)
        local, _, domain = email.address.partition("@")
        stem = local.split("+", 1)[0].split(".", 1)[0][:20]
        if not stem:
            continue
        pattern = stem.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%@%"
        for other_email in session.scalars(select(ConstituentEmail).where(
                ConstituentEmail.address.like(pattern, escape="\\"),
                ConstituentEmail.constituent_id != person.id).limit(200)):
            if mailbox_key(other_email.address) == key:
                add(other_email.constituent, f"same mailbox ({other_email.address})", 100)
    if person.last_name:
        for other in session.scalars(select(Constituent).where(Constituent.last_name == person.last_name,
                                                               Constituent.id != person.id).limit(500)):
            score = name_address_score(person, other)
            if score is not None:
                add(other, "similar name and address", score)
    return sorted(found.values(), key=lambda c: (-c.score, c.person.id))[:limit]


@dataclass
class Pair:
    a: Constituent
    b: Constituent
    reason: str
    score: int


def office_candidates(session: Session, limit: int = 100) -> list[Pair]:
    """Likely duplicate pairs across the office: shared phones, then similar names in one ZIP."""
    pairs: list[Pair] = []
    seen: set[tuple[int, int]] = set()
    live = Constituent.merged_into_id.is_(None)
    shared = (select(ConstituentPhone.number).join(Constituent).where(live).group_by(ConstituentPhone.number)
              .having(func.count(func.distinct(ConstituentPhone.constituent_id)) > 1).limit(limit))
    for number in list(session.scalars(shared)):
        people = list(session.scalars(select(Constituent).join(ConstituentPhone)
                                      .where(ConstituentPhone.number == number, live).order_by(Constituent.id)))
        for other in people[1:]:
            key = (people[0].id, other.id)
            if key not in seen:
                seen.add(key)
                pairs.append(Pair(people[0], other, f"same phone {number}", 100))
    # The same mailbox written two ways ("+news" tags, Gmail's dots) on two records.
    mailboxes: dict[str, int] = {}
    for address, cid in session.execute(
            select(ConstituentEmail.address, ConstituentEmail.constituent_id).join(Constituent).where(
                live, or_(ConstituentEmail.address.like("%+%@%"), ConstituentEmail.address.like("%@gmail.com"),
                          ConstituentEmail.address.like("%@googlemail.com"))).order_by(ConstituentEmail.id)):
        mailbox = mailbox_key(address)
        first = mailboxes.setdefault(mailbox, cid)
        if first != cid and (min(first, cid), max(first, cid)) not in seen:
            seen.add((min(first, cid), max(first, cid)))
            a, b = session.get_one(Constituent, min(first, cid)), session.get_one(Constituent, max(first, cid))
            pairs.append(Pair(a, b, f"same mailbox ({mailbox})", 100))
    groups = (select(Constituent.last_name, Constituent.zip5).where(live, Constituent.last_name.is_not(None),
                                                                    Constituent.zip5.is_not(None))
              .group_by(Constituent.last_name, Constituent.zip5).having(func.count() > 1).limit(limit * 5))
    for last_name, zip5 in list(session.execute(groups)):
        people = list(session.scalars(select(Constituent).where(Constituent.last_name == last_name,
                                                                Constituent.zip5 == zip5, live)
                                      .order_by(Constituent.id).limit(50)))
        for i, a in enumerate(people):
            for b in people[i + 1:]:
                score = name_address_score(a, b)
                if score is not None and (a.id, b.id) not in seen:
                    seen.add((a.id, b.id))
                    pairs.append(Pair(a, b, "similar name and address", score))
        if len(pairs) >= limit:
            break
    return sorted(pairs, key=lambda p: (-p.score, p.a.id))[:limit]


def merge(session: Session, keep_id: int, merge_id: int, *, actor_id: int) -> AuditEvent:
    """Move everything of `merge_id` onto `keep_id`; returns the audit event undo needs."""
    if keep_id == merge_id:
        raise ValidationFailed("a record cannot be merged into itself")
    keep = get_constituent(session, keep_id)
    gone = session.get(Constituent, merge_id, options=[selectinload(Constituent.tags)])
    if gone is None:
        raise NotFound(f"no constituent {merge_id}")
    if keep.merged_into_id is not None or gone.merged_into_id is not None:
        raise ValidationFailed("one of these records was already merged into another; open that one instead")
    moved: dict[str, list[int]] = {}
    for name, model, column in (("messages", Message, Message.constituent_id),
                                ("responses", Response, Response.constituent_id),
                                ("cases", Case, Case.constituent_id),
                                ("emails", ConstituentEmail, ConstituentEmail.constituent_id),
                                ("phones", ConstituentPhone, ConstituentPhone.constituent_id)):
        ids = list(session.scalars(select(model.id).where(column == gone.id)))
        if ids:
            session.execute(update(model).where(model.id.in_(ids)).values(constituent_id=keep.id)
                            .execution_options(synchronize_session=False))
        moved[name] = ids
    have = {t.tag for t in keep.tags}
    tag_ids = [t.id for t in gone.tags if t.tag not in have]
    if tag_ids:
        session.execute(update(ConstituentTag).where(ConstituentTag.id.in_(tag_ids)).values(constituent_id=keep.id)
                        .execution_options(synchronize_session=False))
    moved["tags"] = tag_ids
    filled = {}
    for name in EDITABLE:
        if getattr(keep, name) is None and getattr(gone, name) is not None:
            filled[name] = getattr(gone, name)
            setattr(keep, name, getattr(gone, name))
    gone.merged_into_id = keep.id
    event = record(session, actor_id=actor_id, action="constituent.merge", object_type="constituent",
                   object_id=keep.id, before={"merged_id": gone.id, "moved": moved, "filled": filled},
                   after={"merged_id": gone.id, "moved_counts": {k: len(v) for k, v in moved.items()}})
    session.flush()
    session.expire_all()
    return event


def undo_merge(session: Session, event_id: int, *, actor_id: int) -> Constituent:
    event = session.get(AuditEvent, event_id)
    if event is None or event.action != "constituent.merge":
        raise NotFound(f"no merge {event_id}")
    already = session.scalar(select(AuditEvent.id).where(AuditEvent.action == "constituent.unmerge",
                                                         AuditEvent.object_id == event.object_id,
                                                         AuditEvent.detail == f"undo of event {event.id}"))
    if already:
        raise ValidationFailed("this merge was already undone")
    keep = get_constituent(session, int(event.object_id))
    data = event.before or {}
    gone = get_constituent(session, int(data["merged_id"]))
    if gone.merged_into_id != keep.id:
        raise ValidationFailed("that record is no longer merged here")
    models: dict[str, type[Message | Response | Case | ConstituentEmail | ConstituentPhone | ConstituentTag]] = {
        "messages": Message, "responses": Response, "cases": Case, "emails": ConstituentEmail,
              "phones": ConstituentPhone, "tags": ConstituentTag}
    back = {}
    for name, ids in (data.get("moved") or {}).items():
        model = models[name]
        if ids:
            result = cast(CursorResult[Any], session.execute(
                update(model).where(model.id.in_(ids), model.constituent_id == keep.id)
                .values(constituent_id=gone.id).execution_options(synchronize_session=False)))
            back[name] = result.rowcount
    for name, value in (data.get("filled") or {}).items():
        if getattr(keep, name) == value:
            setattr(keep, name, None)
    gone.merged_into_id = None
    record(session, actor_id=actor_id, action="constituent.unmerge", object_type="constituent", object_id=keep.id,
           before={"merged_id": gone.id}, after={"moved_back": back}, detail=f"undo of event {event.id}")
    session.flush()
    session.expire_all()
    return gone


def merges_of(session: Session, constituent_id: int) -> list[tuple[AuditEvent, bool]]:
    """Merges into this record, newest first, each with whether it was undone."""
    events = list(session.scalars(select(AuditEvent).where(AuditEvent.object_type == "constituent",
                                                           AuditEvent.object_id == str(constituent_id),
                                                           AuditEvent.action == "constituent.merge")
                                  .order_by(AuditEvent.id.desc()).limit(20)))
    undone = set(session.scalars(select(AuditEvent.detail).where(AuditEvent.object_id == str(constituent_id),
                                                                 AuditEvent.action == "constituent.unmerge")))
    return [(e, f"undo of event {e.id}" in undone) for e in events]
