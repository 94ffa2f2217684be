"""Who a message, a form or a CSV row is from: the one "same person" rule of the office.

Every path that meets a person — intake (mail, CWC, web forms, scans, the phone log), the CSV import,
the public help form and the duplicates page — asks `find_or_create`, or scores two records with
`name_address_score`, so a person found one way is found every way.

The rule: **the strongest fact the person gave decides, and a weaker one never overrules it.**
1. An email address on file is that person (confidence 1.0).
2. Only with no email: a phone number on file is that person (0.9). A household shares one phone,
   so a phone never joins two different emails; a new address with a known phone is a new record
   (the duplicates page shows the shared phone for a person to merge).
3. Only with neither: the same last name in the same ZIP, a first + last name scoring at least
   NAME_MIN and a street scoring at least ADDRESS_MIN (rapidfuzz token_sort_ratio of the
   normalised values, 0-100) is that person, with confidence (name + street) / 200. When a second
   candidate scores within MARGIN of the best, the match is *ambiguous*: nobody is chosen, and
   the candidates are returned for a person to decide.
4. Otherwise a new record — or nothing at all when the facts hold no email, phone or last name.

Where the old matchers disagreed the stricter rule was kept: intake used to fall back to the phone
and to name + address when an email was not on file, and the CSV import matched an exact name in
the ZIP without looking at the street; duplicates accepted weaker scores (88/80) and a missing
street. A wrong join puts one person's letters and cases on another's record; a missed one is a
duplicate the duplicates page offers to merge.

Nothing here commits or audits: the caller records the creation in its own event (a message's
match_method, the import's constituent.import_create, the help form's help_request.received).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

from rapidfuzz import fuzz
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from constituents.values import (
    email_key,
    fold_name,
    parse_state,
    parse_zip,
    parse_zip4,
    phone_or_none,
    street_key,
)
from correspondence.errors import ValidationFailed
from correspondence.models import Constituent, ConstituentEmail, ConstituentPhone, DistrictStatus

# Scores (0-100) a candidate needs on name and on street to be the same person, and the lead the
# best candidate needs over the next one to be chosen alone.
NAME_MIN, ADDRESS_MIN, MARGIN = 90, 85, 5
PHONE_CONFIDENCE = 0.9
MAX_CANDIDATES = 200  # people with one surname in one ZIP that are scored

NAME_FIELDS = ("prefix", "first_name", "middle_name", "last_name", "suffix", "address1", "address2", "city")


@dataclass(frozen=True)
class PersonFacts:
    """What a source says about its person, as text (find_or_create reads each value with constituents.values)."""

    email: str | None = None
    phone: str | None = None
    prefix: str | None = None
    first_name: str | None = None
    middle_name: str | None = None
    last_name: str | None = None
    suffix: str | None = None
    address1: str | None = None
    address2: str | None = None
    city: str | None = None
    state: str | None = None
    zip5: str | None = None
    zip4: str | None = None
    more_emails: tuple[str, ...] = ()  # further addresses (a CSV cell with two); the first one on file decides

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> PersonFacts:
        """Facts from a message's facts["constituent"] (keys it does not know are left out)."""
        def text(key: str) -> str | None:
            value = data.get(key)
            return str(value) if value is not None else None

        return cls(email=text("email"), phone=text("phone"), prefix=text("prefix"), first_name=text("first_name"),
                   middle_name=text("middle_name"), last_name=text("last_name"), suffix=text("suffix"),
                   address1=text("address1"), address2=text("address2"), city=text("city"), state=text("state"),
                   zip5=text("zip5"), zip4=text("zip4"))

    # Each value is read once per facts (a batch reads them several times per person).
    @cached_property
    def emails(self) -> list[str]:
        found = (email_key(e) for e in (self.email, *self.more_emails))
        return list(dict.fromkeys(e for e in found if e))

    @cached_property
    def phone_number(self) -> str | None:
        return phone_or_none(self.phone)

    @cached_property
    def zip_code(self) -> str | None:
        try:
            found = parse_zip(self.zip5)
        except ValidationFailed:
            return None
        return found.zip5 if found else None


@dataclass(frozen=True)
class Match:
    """Who the facts are from: `constituent` (an object; new ones have no id until the flush) or
    `constituent_id`, whether it was created, how it was decided and how sure that is."""

    constituent_id: int | None = None
    constituent: Constituent | None = None
    created: bool = False
    method: str = "none"  # email | phone | name+address | created | ambiguous | none
    confidence: float = 0.0
    candidates: tuple[int, ...] = ()  # for "ambiguous": the people it could be, best first
    # Someone a weaker fact points at (the phone of an email not on file): never joined, only shown.
    possible_id: int | None = None
    possible_by: str | None = None

    @property
    def found(self) -> bool:
        return self.constituent_id is not None or self.constituent is not None


@dataclass
class Known:
    """What a batch already knows, so it asks the database once per key and never makes one person twice.

    `emails` and `phones` map a value to its owner's id, or to None when nobody has it (a key that is
    absent is looked up); `made` holds the people created in this batch, not yet flushed, by
    "email:…", "phone:…" or "new:…".
    """

    emails: dict[str, int | None] = field(default_factory=dict)
    phones: dict[str, int | None] = field(default_factory=dict)
    made: dict[str, Constituent] = field(default_factory=dict)

    def preload(self, session: Session, *, emails: Iterable[str] = (), phones: Iterable[str] = ()) -> None:
        """Look up a whole batch's addresses and numbers in two queries."""
        todo = {e for e in emails if e and e not in self.emails}
        if todo:
            found = dict(session.execute(select(ConstituentEmail.address, ConstituentEmail.constituent_id)
                                         .where(ConstituentEmail.address.in_(todo))).all())
            self.emails.update({e: found.get(e) for e in todo})
        todo = {p for p in phones if p and p not in self.phones}
        if todo:
            owners: dict[str, int] = {}
            for number, cid in session.execute(select(ConstituentPhone.number, ConstituentPhone.constituent_id)
                                               .join(Constituent).where(ConstituentPhone.number.in_(todo),
                                                                        Constituent.merged_into_id.is_(None))
                                               .order_by(ConstituentPhone.id)):
                owners.setdefault(number, cid)
            self.phones.update({p: owners.get(p) for p in todo})

    def owner_of_email(self, address: str) -> int | Constituent | None:
        return self.made.get(f"email:{address}") or self.emails.get(address)

    def settle(self) -> None:
        """After the flush: the people made become ids (a new unit of work cannot use the objects)."""
        for key, person in self.made.items():
            kind, _, value = key.partition(":")
            if kind == "email":
                self.emails[value] = person.id
            elif kind == "phone":
                self.phones[value] = person.id
        self.made.clear()


class Named(Protocol):
    """Anything with a name and an address: a record, or facts about a person."""

    @property
    def first_name(self) -> str | None: ...
    @property
    def last_name(self) -> str | None: ...
    @property
    def address1(self) -> str | None: ...
    @property
    def zip5(self) -> str | None: ...


def name_address_score(a: Named, b: Named) -> int | None:
    """0-100 when two people look like one by name and street in one ZIP, else None (the rule's step 3)."""
    if not (a.last_name and b.last_name and a.zip5 and a.zip5 == b.zip5 and a.address1 and b.address1):
        return None
    if fold_name(a.last_name) != fold_name(b.last_name):
        return None
    name = fuzz.token_sort_ratio(fold_name(f"{a.first_name or ''} {a.last_name}"),
                                 fold_name(f"{b.first_name or ''} {b.last_name}"))
    if name < NAME_MIN:
        return None
    street = fuzz.token_sort_ratio(street_key(a.address1), street_key(b.address1))
    if street < ADDRESS_MIN:
        return None
    return round((name + street) / 2)


def live(session: Session, person_id: int | None) -> Constituent | None:
    """The record a merged record now lives in (merges can chain)."""
    person = session.get(Constituent, person_id) if person_id is not None else None
    for _ in range(20):
        if person is None or person.merged_into_id is None:
            return person
        person = session.get(Constituent, person.merged_into_id)
    return person


def _live_id(session: Session, person_id: int, merged_into_id: int | None) -> int:
    if merged_into_id is None:
        return person_id
    found = live(session, person_id)
    return found.id if found is not None else person_id


def _by_email(session: Session, address: str, known: Known) -> int | Constituent | None:
    if (owner := known.owner_of_email(address)) is not None or address in known.emails:
        return owner
    row = session.execute(select(ConstituentEmail.constituent_id, Constituent.merged_into_id).join(Constituent)
                          .where(ConstituentEmail.address == address)).first()
    return _live_id(session, row[0], row[1]) if row else None


def _by_phone(session: Session, number: str, known: Known) -> int | Constituent | None:
    if (made := known.made.get(f"phone:{number}")) is not None:
        return made
    if number in known.phones:
        return known.phones[number]
    return session.scalar(select(ConstituentPhone.constituent_id).join(Constituent)
                          .where(ConstituentPhone.number == number, Constituent.merged_into_id.is_(None))
                          .order_by(ConstituentPhone.id).limit(1))


def _found(owner: int | Constituent, method: str, confidence: float) -> Match:
    if isinstance(owner, Constituent):
        return Match(owner.id, owner, method=method, confidence=confidence)
    return Match(owner, method=method, confidence=confidence)


@dataclass(frozen=True)
class _Probe:
    """The facts in the shape name_address_score reads."""

    first_name: str | None
    last_name: str | None
    address1: str | None
    zip5: str | None


def _by_name_and_address(session: Session, probe: _Probe, known: Known) -> list[tuple[int, int | Constituent]]:
    """(score, who) of everyone on file (or made in this batch) passing the rule's step 3, best first."""
    people = list(session.scalars(select(Constituent).where(
        Constituent.zip5 == probe.zip5, func.lower(Constituent.last_name) == (probe.last_name or "").lower(),
        Constituent.merged_into_id.is_(None)).order_by(Constituent.id).limit(MAX_CANDIDATES)))
    scored: list[tuple[int, int | Constituent]] = []
    for person in people:
        if (score := name_address_score(probe, person)) is not None:
            scored.append((score, person.id))
    for person in dict.fromkeys(known.made.values()):
        if person.id is None and (score := name_address_score(probe, person)) is not None:
            scored.append((score, person))
    scored.sort(key=lambda pair: (-pair[0], pair[1].id or 0 if isinstance(pair[1], Constituent) else pair[1]))
    return scored


def find(session: Session, facts: PersonFacts, known: Known | None = None) -> Match:
    """Who the facts are from by the rule, without making anyone (method "none" when nobody)."""
    known = known if known is not None else Known()
    emails, phone = facts.emails, facts.phone_number
    with session.no_autoflush:  # a look-up must not flush a batch on every query
        if emails:
            for address in emails:
                if (owner := _by_email(session, address, known)) is not None:
                    return _found(owner, "email", 1.0)
            # Not on file: a weaker fact only *suggests* someone, for a person to confirm.
            if phone and (owner := _by_phone(session, phone, known)) is not None:
                possible = owner.id if isinstance(owner, Constituent) else owner
                return Match(possible_id=possible, possible_by="phone")
            return Match()
        if phone:
            if (owner := _by_phone(session, phone, known)) is not None:
                return _found(owner, "phone", PHONE_CONFIDENCE)
            return Match()
        zip5 = facts.zip_code
        if not (facts.last_name and zip5 and facts.address1):
            return Match()
        scored = _by_name_and_address(session, _Probe(facts.first_name, facts.last_name, facts.address1, zip5),
                                      known)
    if not scored:
        return Match()
    if len(scored) > 1 and scored[1][0] > scored[0][0] - MARGIN:
        ids = tuple(who.id if isinstance(who, Constituent) else who for _score, who in scored[:5])
        return Match(method="ambiguous", candidates=tuple(i for i in ids if i is not None))
    return _found(scored[0][1], "name+address", round(scored[0][0] / 100, 2))


def identifiable(facts: PersonFacts) -> bool:
    """Whether the facts hold something to know the person by again: an email, a phone or a last name."""
    return bool(facts.emails or facts.phone_number or (facts.last_name or "").strip())


def new_constituent(facts: PersonFacts) -> Constituent:
    """A record holding the facts, each value read the one way (a value that does not parse is cut to fit)."""
    values = {k: (getattr(facts, k) or "").strip() or None for k in NAME_FIELDS}
    try:
        state = parse_state(facts.state)
    except ValidationFailed:
        state = (facts.state or "").strip()[:2].upper() or None
    try:
        zip_code = parse_zip(facts.zip5)
    except ValidationFailed:
        zip_code = None
    try:
        zip4 = parse_zip4(facts.zip4) or (zip_code.zip4 if zip_code else None)
    except ValidationFailed:
        zip4 = None
    person = Constituent(**values, state=state, zip5=zip_code.zip5 if zip_code else None, zip4=zip4,
                         district_status=DistrictStatus.UNKNOWN)
    for address in facts.emails:
        person.emails.append(ConstituentEmail(address=address))
    if facts.phone_number:
        person.phones.append(ConstituentPhone(number=facts.phone_number))
    return person


def create_person(session: Session, facts: PersonFacts, known: Known | None = None) -> Constituent:
    """A new record for the facts, added to the session and remembered by the batch (not flushed)."""
    person = new_constituent(facts)
    session.add(person)
    if known is not None:
        keys = [f"email:{e}" for e in facts.emails if known.owner_of_email(e) is None]
        keys += [f"phone:{facts.phone_number}"] if facts.phone_number else []
        for key in keys or [f"new:{id(person)}"]:
            known.made.setdefault(key, person)
    return person


def find_or_create(session: Session, facts: PersonFacts, *, create: bool = True,
                   known: Known | None = None) -> Match:
    """The person the facts are from by the rule; with `create`, a new record when there is nobody.

    An ambiguous match creates nobody (a person chooses among the candidates), nor do facts with no
    email, phone or last name. A batch passes one `Known` to every call. Flushes nothing.
    """
    known = known if known is not None else Known()
    match = find(session, facts, known)
    if match.found or match.method == "ambiguous" or not create or not identifiable(facts):
        return match
    person = create_person(session, facts, known)
    return Match(None, person, created=True, method="created", confidence=1.0,
                 possible_id=match.possible_id, possible_by=match.possible_by)
