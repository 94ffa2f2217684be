"""The constituent record: editing with an audit trail, and one timeline of everything about a person."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from constituents.identity import PersonFacts, find, new_constituent
from constituents.values import (
    EMAIL_RE,
    normalise_email,
    normalise_phone,
    parse_state,
    parse_zip,
    parse_zip4,
    too_long,
)
from correspondence.errors import NotFound, ValidationFailed
from correspondence.models import (
    Case,
    Constituent,
    ConstituentEmail,
    ConstituentPhone,
    ConstituentTag,
    DistrictStatus,
    Message,
    Response,
)
from correspondence.services.audit import record

T = TypeVar("T")

EDITABLE = ("prefix", "first_name", "middle_name", "last_name", "suffix", "address1", "address2", "city", "state",
            "zip5", "zip4")


def get_constituent(session: Session, constituent_id: int) -> Constituent:
    person = session.get(Constituent, constituent_id)
    if person is None:
        raise NotFound(f"no constituent {constituent_id}")
    return person


def _read_address(clean: dict[str, str | None]) -> list[str]:
    """State, ZIP and ZIP+4 as typed, read in place as the CSV import reads them; what is wrong with them."""
    problems: list[str] = []
    for key, parse in (("state", parse_state), ("zip4", parse_zip4)):
        if clean.get(key):
            try:
                clean[key] = parse(clean[key])
            except ValidationFailed as exc:
                problems.append(str(exc))
    if clean.get("zip5"):
        try:
            code = parse_zip(clean["zip5"])
        except ValidationFailed as exc:
            code = None
            problems.append(str(exc))
        if code is not None:
            clean["zip5"] = code.zip5
            if code.zip4 and not clean.get("zip4"):
                clean["zip4"] = code.zip4  # "43215-1234" typed in the ZIP box
    return problems


def update_constituent(session: Session, constituent_id: int, values: dict[str, str], *,
                       actor_id: int) -> Constituent:
    """Change names and address; the audit event keeps what each field was and became."""
    person = get_constituent(session, constituent_id)
    clean = {k: (values.get(k) or "").strip() or None for k in EDITABLE if k in values}
    problems = [f"{k} {reason}" for k, reason in too_long(clean).items() if k not in ("state", "zip5", "zip4")]
    problems += _read_address(clean)
    if problems:
        raise ValidationFailed("; ".join(problems))
    before = {k: getattr(person, k) for k in clean if getattr(person, k) != clean[k]}
    if not before:
        return person
    for key in before:
        setattr(person, key, clean[key])
    if "zip5" in before or "zip4" in before:
        person.district_status = DistrictStatus.UNKNOWN  # placed again by the next message's district stage
    record(session, actor_id=actor_id, action="constituent.edit", object_type="constituent", object_id=person.id,
           before=before, after={k: clean[k] for k in before})
    return person


class EmailOnFile(ValidationFailed):
    """A new record was asked for with an email address another record already holds."""

    def __init__(self, address: str, constituent_id: int) -> None:
        super().__init__(f"{address} belongs to constituent {constituent_id}; change that record instead")
        self.constituent_id = constituent_id


def create_constituent(session: Session, values: Mapping[str, str | None], *, email: str | None = None,
                       phone: str | None = None, actor_id: int) -> Constituent:
    """A record a staffer types in (the API, a page): each value read as the CSV import reads it, and an
    email already on file refused with that record's id rather than made twice (the office's one matcher,
    constituents.identity, decides; a phone or name match still makes a record, for the duplicates page)."""
    unknown = sorted(set(values) - set(EDITABLE))
    if unknown:
        raise ValidationFailed(f"not a field of a constituent: {', '.join(unknown)[:200]}")
    clean = {k: (values.get(k) or "").strip() or None for k in EDITABLE}
    problems = [f"{k} {reason}" for k, reason in too_long(clean).items() if k not in ("state", "zip5", "zip4")]
    address = number = None
    try:
        address = normalise_email(email)
    except ValidationFailed as exc:
        problems.append(f"email {exc}")
    try:
        number = normalise_phone(phone) if phone and phone.strip() else None
    except ValidationFailed as exc:
        problems.append(f"phone {exc}")
    problems += _read_address(clean)
    if not problems and not (clean["last_name"] or address or number):
        problems.append("give a last name, an email or a phone to know the person by")
    if problems:
        raise ValidationFailed("; ".join(problems))
    facts = PersonFacts(email=address, phone=number, prefix=clean["prefix"], first_name=clean["first_name"],
                        middle_name=clean["middle_name"], last_name=clean["last_name"], suffix=clean["suffix"],
                        address1=clean["address1"], address2=clean["address2"], city=clean["city"],
                        state=clean["state"], zip5=clean["zip5"], zip4=clean["zip4"])
    if address is not None:
        match = find(session, PersonFacts(email=address))
        if match.found and match.constituent_id is not None:
            raise EmailOnFile(address, match.constituent_id)
    person = new_constituent(facts)
    try:
        # In a savepoint: a second request with the same new address may commit first (the address is
        # unique), and then this one answers as if it had come second, as intake.receive does.
        with session.begin_nested():
            session.add(person)
            session.flush()
    except IntegrityError:
        winner = find(session, PersonFacts(email=address)).constituent_id if address is not None else None
        if address is not None and winner is not None:
            raise EmailOnFile(address, winner) from None
        raise
    given = sorted([k for k, v in clean.items() if v] + (["email"] if address else []) + (["phone"] if number else []))
    record(session, actor_id=actor_id, action="constituent.create", object_type="constituent", object_id=person.id,
           after={"fields": given})
    return person


@dataclass(frozen=True)
class Entry:
    at: datetime
    kind: str  # "message", "response", "case"
    title: str
    detail: str
    ref: int


def timeline(session: Session, constituent_id: int, limit: int = 200, *,
             notes_of: Callable[[Case], bool] | None = None) -> list[Entry]:
    """Every message, answer, case, case note and change to the record of one person, newest first.

    Case notes are need-to-know: only those of cases for which `notes_of(case)` is true are listed
    (the web passes casework.cases.may_see_private for the viewer); without it, none are.
    """
    from correspondence.models import CaseNote
    entries = [Entry(m.received_at, "message", m.subject or "(no subject)", m.channel.label, m.id)
               for m in session.scalars(select(Message).where(Message.constituent_id == constituent_id)
                                        .order_by(Message.received_at.desc()).limit(limit))]
    entries += [Entry(r.created_at, "response", r.subject, f"{r.method.value} · {r.state.value.replace('_', ' ')}",
                      r.message_id)
                for r in session.scalars(select(Response).where(Response.constituent_id == constituent_id)
                                         .order_by(Response.id.desc()).limit(limit))]
    entries += [Entry(c.opened_at, "case", c.subject, f"{c.category.name} · {c.status.value.replace('_', ' ')}", c.id)
                for c in session.scalars(select(Case).where(Case.constituent_id == constituent_id)
                                         .order_by(Case.opened_at.desc()).limit(limit))]
    if notes_of is not None:
        visible = {c.id for c in session.scalars(select(Case).where(Case.constituent_id == constituent_id))
                   if notes_of(c)}
        entries += [Entry(n.created_at, "note", n.text[:120], f"on case {n.case_id}", n.case_id)
                    for n in session.scalars(select(CaseNote).where(CaseNote.case_id.in_(visible))
                                             .order_by(CaseNote.id.desc()).limit(limit))]
    # Changes to the record read as sentences with who made them (services/history.py), never raw data.
    from correspondence.services.history import history_of

    entries += [Entry(line.at, "activity", line.sentence, "", 0)
                for line in history_of(session, "constituent", constituent_id, limit=limit)]
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries[:limit]


TAG_RE = re.compile(r"[\w][\w .&'/-]{0,59}")


def clean_tag(text: str) -> str:
    tag = " ".join(text.strip().lower().split())
    if not tag or not TAG_RE.fullmatch(tag):
        raise ValidationFailed("a tag is 1–60 letters, digits, spaces or . & ' / - (starting with a letter or digit)")
    return tag


def add_tag(session: Session, constituent_id: int, text: str, *, actor_id: int | None) -> str:
    person = get_constituent(session, constituent_id)
    tag = clean_tag(text)
    if any(t.tag == tag for t in person.tags):
        return tag
    person.tags.append(ConstituentTag(tag=tag))
    record(session, actor_id=actor_id, action="constituent.tag", object_type="constituent", object_id=person.id,
           after={"tag": tag})
    return tag


def remove_tag(session: Session, constituent_id: int, tag: str, *, actor_id: int | None) -> None:
    person = get_constituent(session, constituent_id)
    for item in list(person.tags):
        if item.tag == tag:
            person.tags.remove(item)
            record(session, actor_id=actor_id, action="constituent.untag", object_type="constituent",
                   object_id=person.id, before={"tag": tag})
            return
    raise NotFound(f"{person.full_name} has no tag {tag!r}")


def all_tags(session: Session) -> list[tuple[str, int]]:
    return [(t, n) for t, n in session.execute(select(ConstituentTag.tag, func.count()).group_by(ConstituentTag.tag)
                                               .order_by(ConstituentTag.tag))]


FIND_MAX = 200  # characters of a "find a person" search that are read


def find_conditions(text: str) -> list[ColumnElement[bool]]:
    """Conditions on Constituent for the one "find a person" box: a name, an email, a phone number, a
    street or a ZIP — whichever the text is. Conservative: every word must match something of the person.

    - an email address (or its start): the person's addresses;
    - a phone number, written any usual way: normalised to E.164 (normalise_phone) and matched exactly;
      seven digits or more that are not a whole number match the end of a number (555-0100);
    - a ZIP (12345 or 12345-6789, read by parse_zip): the ZIP;
    - otherwise each word: the start of the first or last name, part of the street, the city, or the ZIP.
    """
    text = " ".join(text.split())[:FIND_MAX]
    if not text:
        return []
    if "@" in text and " " not in text:
        address = text.lower()
        # A whole address is one look-up in the unique index; the start of one ("ana.lopez@") is a scan.
        whole = EMAIL_RE.fullmatch(address) is not None
        return [Constituent.id.in_(select(ConstituentEmail.constituent_id).where(
            ConstituentEmail.address == address if whole else
            ConstituentEmail.address.startswith(address, autoescape=True)))]
    try:
        code = parse_zip(text)
    except ValidationFailed:
        code = None
    if code is not None:
        return [Constituent.zip5 == code.zip5] + ([Constituent.zip4 == code.zip4] if code.zip4 else [])
    digits = re.sub(r"\D", "", text)
    if len(digits) >= 7 and re.fullmatch(r"[\d\s().+-]+", text):
        try:
            number = normalise_phone(text)
        except ValidationFailed:
            number = None
        phones = select(ConstituentPhone.constituent_id)
        phones = (phones.where(ConstituentPhone.number == number) if number and len(digits) >= 10
                  else phones.where(ConstituentPhone.number.endswith(digits, autoescape=True)))
        return [Constituent.id.in_(phones)]
    conditions: list[ColumnElement[bool]] = []
    for word in text.lower().replace(",", " ").split()[:8]:
        conditions.append(or_(func.lower(Constituent.first_name).startswith(word, autoescape=True),
                              func.lower(Constituent.last_name).startswith(word, autoescape=True),
                              func.lower(Constituent.address1).contains(word, autoescape=True),
                              func.lower(Constituent.city) == word,
                              Constituent.zip5 == word[:5]))
    return conditions


def add_contact(session: Session, constituent_id: int, kind: str, text: str, *, actor_id: int | None) -> str:
    """Add an email address or a phone number to a person; an email already on another record is refused
    (merge the two records instead)."""
    from correspondence.models import ConstituentEmail, ConstituentPhone

    person = get_constituent(session, constituent_id)
    if kind == "email":
        address = normalise_email(text)
        if address is None:
            raise ValidationFailed("enter an email address")
        owner = session.scalar(select(ConstituentEmail.constituent_id).where(ConstituentEmail.address == address))
        if owner == person.id:
            return address
        if owner is not None:
            raise ValidationFailed(f"{address} belongs to constituent {owner}; if they are the same person, "
                                   "merge the two records")
        person.emails.append(ConstituentEmail(address=address))
        value = address
    elif kind == "phone":
        value = normalise_phone(text)
        if value in {p.number for p in person.phones}:
            return value
        person.phones.append(ConstituentPhone(number=value))
    else:
        raise ValidationFailed("add an email or a phone")
    record(session, actor_id=actor_id, action=f"constituent.add_{kind}", object_type="constituent",
           object_id=person.id, after={kind: value})
    return value


def remove_contact(session: Session, constituent_id: int, kind: str, value: str, *, actor_id: int | None) -> None:
    person = get_constituent(session, constituent_id)
    if kind == "email":
        removed = _remove_first(person.emails, lambda e: e.address == value)
    elif kind == "phone":
        removed = _remove_first(person.phones, lambda p: p.number == value)
    else:
        raise ValidationFailed("remove an email or a phone")
    if not removed:
        raise NotFound(f"{person.full_name} has no {kind} {value!r}")
    record(session, actor_id=actor_id, action=f"constituent.remove_{kind}", object_type="constituent",
           object_id=person.id, before={kind: value})


def _remove_first(items: list[T], matches: Callable[[T], bool]) -> bool:
    for item in items:
        if matches(item):
            items.remove(item)
            return True
    return False
