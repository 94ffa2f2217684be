"""Apply to all: one approved version answers a batch (or a selection) with ONE letter per person.

``plan`` is the dry run a person sees before confirming; ``execute_run`` is the job that does it.
Both walk the same people in the same order and ask the same function, ``decide``, what happens to
each person, so the dry run's numbers are exactly what confirming does. A person is their
constituent record; without one, their lower-cased email address; else the message alone. Their one
letter covers all of their messages in the selection (``response_messages``: one row per message, the
once-per-message guarantee), renders with their latest message, and goes by email to the address of
their latest electronic message, else by post. The database refuses the same form letter (any
version) to the same constituent twice (a partial unique index), even from two runs at once.

The job works through people in chunks, one transaction each, and records how far it got
(``people_done``), so a crashed run resumes where it stopped and a second run over the same
selection creates nothing. Messages answered by a letter become "answer queued"; they become
"responded" only when the letter has left (``drafting.send`` on the server's acceptance, or the run's
print file).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, load_only, selectinload

from correspondence.db import Database
from correspondence.effects import Done, Effect
from correspondence.errors import NotFound, PermissionDenied, ValidationFailed
from correspondence.models import (
    ApplyRun,
    Batch,
    BatchStatus,
    Channel,
    DeliveryMethod,
    Direction,
    DistrictStatus,
    FormLetter,
    LetterVersion,
    Message,
    MessageStatus,
    Response,
    ResponseMessage,
    ResponseState,
    RunState,
    SuppressionReason,
    VersionState,
    utcnow,
)
from correspondence.services.audit import record
from correspondence.services.blobs import store_blob
from correspondence.services.messages import answers_left, close_message, queue_answers
from correspondence.states import ANSWERABLE, APPLY_RUNS, can_move
from drafting.headers import header_text
from drafting.render import Budget, LetterError, Office, context, render, validate
from outbound import franking, suppression

log = logging.getLogger(__name__)

CHUNK = 500  # people per transaction
_EMAIL = re.compile(r"[^@\s<>]+@[^@\s<>]+\.[A-Za-z]{2,}")
# Letters written on paper (or in person) are answered on paper when there is an address.
PAPER_CHANNELS = (Channel.POSTAL, Channel.WALK_IN)
# How many times a chunk that lost a race (the unique index) is done again; the retry sees the winner.
RACE_RETRIES = 3

# Every way a message can be left out, by its real name, in the order the dry run lists them.
# "closed" ones are closed by the run with the reason; "open" ones are left untouched for a person.
CATEGORIES: dict[str, str] = {
    "already_answered": "Already answered by a letter",
    "answer_queued": "Answer queued (a letter is waiting to leave)",
    "responded": "Responded",
    "closed": "Closed",
    "archived": "Archived",
    "quarantined": "Quarantined",
    "already_sent": "Already sent this letter (closed)",
    "answered_campaign": "Already answered on this campaign (closed)",
    "frequent_writer": "Skipped by the frequent-writer policy (closed)",
    "out_of_district": "Out of district (left open)",
    "district_unknown": "District unknown (left open)",
    "personal_additions": "Personal additions, left to answer by hand",
    "no_address": "No email or postal address (left open)",
    "suppressed_invalid": "Email address invalid: it bounced (left open)",
    "suppressed_complaint": "Email address reported our mail as spam (left open)",
    "suppressed_unsubscribed": "Unsubscribed from follow-ups (left open)",
}
_STATUS_CATEGORY = {MessageStatus.ANSWER_QUEUED: "answer_queued", MessageStatus.RESPONDED: "responded",
                    MessageStatus.CLOSED: "closed", MessageStatus.ARCHIVED: "archived",
                    MessageStatus.QUARANTINED: "quarantined"}


@dataclass(frozen=True)
class Options:
    """What the staffer chose on the dry run; stored on the run, honoured by the job."""

    district: str = "everyone"  # or "in_district": out-of-district and district-unknown people are left open
    skip_answered_campaign: bool = False  # close the messages of people already answered on this batch
    leave_additions: bool = False  # leave people whose messages carry personal additions to answer by hand

    @classmethod
    def from_mapping(cls, data: Mapping[str, object] | None) -> Options:
        data = data or {}
        district = str(data.get("district") or "everyone")
        if district not in ("everyone", "in_district"):
            raise ValidationFailed(f"district: {district[:40]!r} is not everyone or in_district")
        return cls(district=district, skip_answered_campaign=_flag(data.get("skip_answered_campaign")),
                   leave_additions=_flag(data.get("leave_additions")))

    def as_dict(self) -> dict[str, object]:
        return {"district": self.district, "skip_answered_campaign": self.skip_answered_campaign,
                "leave_additions": self.leave_additions}


def _flag(value: object) -> bool:
    return value is True or str(value or "").lower() in ("1", "true", "on", "yes")


@dataclass(frozen=True)
class Policy:
    """The office's standing rules (settings), as values."""

    frequent_writer_days: int = 0

    @classmethod
    def of(cls, settings) -> Policy:
        return cls(frequent_writer_days=int(getattr(settings, "frequent_writer_days", 0) or 0))


def office_of(settings) -> Office:
    return Office(name=settings.office_name, member_name=settings.member_name, signature=settings.signature,
                  letterhead=settings.letterhead)


def budget_of(settings) -> Budget:
    return Budget(max_bytes=settings.letter_max_kb * 1024, seconds=settings.letter_render_seconds)


def has_postal_address(message: Message) -> bool:
    c = message.constituent
    return bool(c and c.address1 and c.city and c.state and c.zip5)


def valid_email(address: str | None) -> str | None:
    """The address, trimmed, when it is one plausible email address; else None."""
    text = (address or "").strip()
    return text if text and _EMAIL.fullmatch(text) else None


def delivery_for(message: Message) -> DeliveryMethod | None:
    """Email when they wrote electronically and left an address; the post when they wrote on paper."""
    return _delivery([message])[0]


def _latest(messages: Sequence[Message]) -> Message:
    return max(messages, key=lambda m: (m.received_at, m.id))


def _delivery(messages: Sequence[Message]) -> tuple[DeliveryMethod | None, str | None]:
    """How one person's letter goes: email to the address of their latest electronic message with a valid
    address; else the post when they have a postal address (so paper-only writers get paper); else email
    to an address a paper letter gave; else nothing (no address)."""
    electronic = [m for m in messages if m.channel not in PAPER_CHANNELS and valid_email(m.from_address)]
    if electronic:
        return DeliveryMethod.EMAIL, valid_email(_latest(electronic).from_address)
    if has_postal_address(messages[0]):
        return DeliveryMethod.PRINT, None
    emailed = [m for m in messages if valid_email(m.from_address)]
    if emailed:
        return DeliveryMethod.EMAIL, valid_email(_latest(emailed).from_address)
    return None, None


def person_key(constituent_id: int | None, from_address: str | None, message_id: int) -> tuple[str, object]:
    """Who wrote: their constituent record; without one, their lower-cased email address; else the message."""
    if constituent_id is not None:
        return ("c", constituent_id)
    address = valid_email(from_address)
    if address:
        return ("e", address.lower())
    return ("m", message_id)


def group_people(session: Session, message_ids: Sequence[int]) -> list[list[int]]:
    """The selection's messages grouped by person, in order of each person's first message id."""
    groups: dict[tuple[str, object], list[int]] = {}
    for chunk in _chunks(sorted(set(message_ids)), 2000):
        rows = session.execute(select(Message.id, Message.constituent_id, Message.from_address)
                               .where(Message.id.in_(chunk)).order_by(Message.id))
        for mid, cid, address in rows:
            groups.setdefault(person_key(cid, address, mid), []).append(mid)
    return sorted(groups.values(), key=lambda ids: ids[0])


@dataclass
class Earlier:
    """A letter a person already has (or, within one walk, is about to get), as far as the rules care."""

    letter_id: int | None
    at: datetime
    topic_ids: frozenset[int]
    batch_ids: frozenset[int]


@dataclass
class Facts:
    """What the rules need to know about one chunk of people, read in a few queries."""

    answered: set[int] = field(default_factory=set)
    by_constituent: dict[int, list[Earlier]] = field(default_factory=lambda: defaultdict(list))
    by_address: dict[str, list[Earlier]] = field(default_factory=lambda: defaultdict(list))
    topic_names: dict[int, str] = field(default_factory=dict)
    batch_titles: dict[int, str] = field(default_factory=dict)
    # Suppressed addresses among these people's (outbound.suppression), by lower-cased address.
    suppressed: dict[str, SuppressionReason | None] = field(default_factory=dict)

    def earlier(self, key: tuple[str, object]) -> list[Earlier]:
        if key[0] == "c":
            return self.by_constituent.get(key[1], [])  # type: ignore[call-overload]
        if key[0] == "e":
            return self.by_address.get(key[1], [])  # type: ignore[call-overload]
        return []

    def note(self, constituent_id: int | None, address: str | None, item: Earlier) -> None:
        if constituent_id is not None:
            self.by_constituent[constituent_id].append(item)
        if address:
            self.by_address[address.lower()].append(item)


def _load_people(session: Session, people: Sequence[Sequence[int]]) -> list[list[Message]]:
    ids = [mid for person in people for mid in person]
    # Only what the rules and the merge fields read: not the bodies, the raw input or the suggestions.
    loaded = {m.id: m for m in session.scalars(select(Message).where(Message.id.in_(ids)).options(
        load_only(Message.id, Message.channel, Message.received_at, Message.from_address, Message.subject,
                  Message.constituent_id, Message.topic_id, Message.batch_id, Message.batch_additions,
                  Message.status, Message.direction, Message.source),
        selectinload(Message.constituent), selectinload(Message.topic)))}
    return [[loaded[mid] for mid in person if mid in loaded] for person in people]


def _load_facts(session: Session, people: Sequence[Sequence[Message]], *, facts: Facts) -> Facts:
    """Earlier letters of these people (by constituent, or by address for people without a record)."""
    ids = [m.id for person in people for m in person]
    facts.answered = set(session.scalars(select(ResponseMessage.message_id)
                                         .where(ResponseMessage.message_id.in_(ids))))
    facts.suppressed.update({a: row.reason for a, row in suppression.suppressed(
        session, (m.from_address for person in people for m in person)).items()})
    constituents = {m.constituent_id for person in people for m in person if m.constituent_id is not None}
    addresses = {key[1] for person in people if person
                 for key in [person_key(person[0].constituent_id, person[0].from_address, person[0].id)]
                 if key[0] == "e"}
    found: list[tuple[Response, int | None, int | None]] = []
    if constituents:
        found += session.execute(
            select(Response, Message.topic_id, Message.batch_id)
            .join(ResponseMessage, ResponseMessage.response_id == Response.id)
            .join(Message, Message.id == ResponseMessage.message_id)
            .where(Response.constituent_id.in_(constituents))).all()
    if addresses:
        found += session.execute(
            select(Response, Message.topic_id, Message.batch_id)
            .join(ResponseMessage, ResponseMessage.response_id == Response.id)
            .join(Message, Message.id == ResponseMessage.message_id)
            .where(Response.constituent_id.is_(None), func.lower(Response.to_address).in_(addresses))
        ).all()
    letters: dict[int, tuple[Response, set[int], set[int]]] = {}
    for response, topic_id, batch_id in found:
        _r, topics, batches = letters.setdefault(response.id, (response, set(), set()))
        if topic_id is not None:
            topics.add(topic_id)
        if batch_id is not None:
            batches.add(batch_id)
    for response, topics, batches in letters.values():
        item = Earlier(response.letter_id, _aware(response.created_at), frozenset(topics), frozenset(batches))
        if response.constituent_id is not None:
            facts.by_constituent[response.constituent_id].append(item)
        elif response.to_address:
            facts.by_address[response.to_address.strip().lower()].append(item)
    topic_ids = {m.topic_id for person in people for m in person if m.topic_id is not None}
    topic_ids |= {t for items in facts.by_constituent.values() for e in items for t in e.topic_ids}
    missing = topic_ids - set(facts.topic_names)
    if missing:
        from correspondence.models import Topic

        facts.topic_names.update(session.execute(select(Topic.id, Topic.name).where(Topic.id.in_(missing))).all())
    batch_ids = {m.batch_id for person in people for m in person if m.batch_id is not None}
    missing = batch_ids - set(facts.batch_titles)
    if missing:
        facts.batch_titles.update(session.execute(select(Batch.id, Batch.title).where(Batch.id.in_(missing))).all())
    return facts


def _aware(value: datetime) -> datetime:
    from datetime import UTC

    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass
class Decision:
    """What happens to one person: a letter covering ``covered``, messages closed with a reason, or nothing."""

    key: tuple[str, object]
    covered: list[Message] = field(default_factory=list)
    latest: Message | None = None
    method: DeliveryMethod | None = None
    address: str | None = None
    close: list[Message] = field(default_factory=list)
    reason: str | None = None
    counts: Counter[str] = field(default_factory=Counter)
    with_additions: bool = False


def _day(at: datetime) -> str:
    return at.strftime("%B %-d, %Y")


def decide(messages: Sequence[Message], facts: Facts, *, letter_id: int | None, options: Options,
           policy: Policy, now: datetime) -> Decision:
    """The one place that says what a run does to one person (``plan`` and ``execute_run`` both ask it)."""
    first = messages[0]
    key = person_key(first.constituent_id, first.from_address, first.id)
    result = Decision(key=key)
    open_ones: list[Message] = []
    for m in messages:
        if m.id in facts.answered:
            result.counts["already_answered"] += 1
        elif m.status not in ANSWERABLE:
            result.counts[_STATUS_CATEGORY.get(m.status, m.status.value)] += 1
        else:
            open_ones.append(m)
    if not open_ones:
        return result
    earlier = facts.earlier(key)

    def closing(category: str, reason: str) -> Decision:
        result.counts[category] += len(open_ones)
        result.close = [m for m in open_ones if can_move(m.status, MessageStatus.CLOSED)]
        result.reason = reason
        return result

    same_letter = [e for e in earlier if letter_id is not None and e.letter_id == letter_id]
    if same_letter:
        return closing("already_sent", f"already sent this letter on {_day(min(e.at for e in same_letter))}")
    batches = {m.batch_id for m in open_ones if m.batch_id is not None}
    if options.skip_answered_campaign and batches:
        campaign = [e for e in earlier if e.batch_ids & batches]
        if campaign:
            return closing("answered_campaign",
                           f"already answered on this campaign on {_day(min(e.at for e in campaign))}")
    if policy.frequent_writer_days > 0:
        since = now - timedelta(days=policy.frequent_writer_days)
        topics = {m.topic_id for m in open_ones if m.topic_id is not None}
        recent = sorted((e for e in earlier if e.at >= since and (e.topic_ids & topics or e.batch_ids & batches)),
                        key=lambda e: e.at, reverse=True)
        if recent:
            e = recent[0]
            shared_topic = sorted(e.topic_ids & topics)
            about = (facts.topic_names.get(shared_topic[0], "this topic") if shared_topic else
                     facts.batch_titles.get(sorted(e.batch_ids & batches)[0], "this campaign"))
            return closing("frequent_writer", f"frequent writer: answered on {about} on {_day(e.at)}")
    if options.district == "in_district":
        constituent = first.constituent
        status = constituent.district_status if constituent is not None else DistrictStatus.UNKNOWN
        if status == DistrictStatus.OUT_OF_DISTRICT:
            result.counts["out_of_district"] += len(open_ones)
            return result
        if status != DistrictStatus.IN_DISTRICT:
            result.counts["district_unknown"] += len(open_ones)
            return result
    additions = any(m.batch_additions for m in open_ones)
    if additions and options.leave_additions:
        result.counts["personal_additions"] += len(open_ones)
        return result
    method, address = _delivery(open_ones)
    if method is None:
        result.counts["no_address"] += len(open_ones)
        return result
    held = facts.suppressed.get(suppression.normalise(address)) if method == DeliveryMethod.EMAIL else None
    if held is not None and suppression.blocks(held, follow_up=any(m.direction == Direction.OUTBOUND
                                                                   for m in open_ones)):
        result.counts[f"suppressed_{held.value}"] += len(open_ones)
        return result
    result.covered, result.latest, result.method = open_ones, _latest(open_ones), method
    result.address, result.with_additions = address, additions
    return result


def _note_letter(facts: Facts, decision: Decision, letter_id: int | None, now: datetime) -> None:
    """Later people in the same walk see this letter as already made (so plan and run agree)."""
    covered = decision.covered
    item = Earlier(letter_id, now, frozenset(m.topic_id for m in covered if m.topic_id is not None),
                   frozenset(m.batch_id for m in covered if m.batch_id is not None))
    cid = covered[0].constituent_id
    facts.note(cid, decision.address if cid is None and decision.method == DeliveryMethod.EMAIL else None, item)


@dataclass
class Plan:
    """The dry run: letters, people and messages, and every message left out under its real name."""

    messages: int = 0  # in the selection
    people: int = 0  # in the selection
    letters: int = 0  # to be made, one per person
    covered: int = 0  # messages those letters answer
    email: int = 0  # letters by email
    print: int = 0  # letters for the post
    with_additions: int = 0  # letters to people whose messages carry personal additions
    closed: int = 0  # messages the run closes (with the reason)
    unsolicited: int = 0  # letters to people who did not write (follow-ups): outbound.franking counts them
    counts: dict[str, int] = field(default_factory=dict)
    message_ids: list[int] = field(default_factory=list)
    franking: franking.Verdict | None = None  # the mass-communication guard's verdict on this run

    @property
    def total(self) -> int:
        return self.messages

    @property
    def answered(self) -> int:
        return self.counts.get("already_answered", 0)

    @property
    def no_address(self) -> int:
        return self.counts.get("no_address", 0)

    def categories(self) -> list[tuple[str, str, int]]:
        """(key, label, messages) for every category with messages, in the dry run's order."""
        return [(k, label, self.counts[k]) for k, label in CATEGORIES.items() if self.counts.get(k)]

    def add(self, decision: Decision) -> None:
        self.counts = dict(Counter(self.counts) + decision.counts)
        self.closed += len(decision.close)
        if decision.covered:
            self.letters += 1
            self.covered += len(decision.covered)
            self.email += decision.method == DeliveryMethod.EMAIL
            self.print += decision.method == DeliveryMethod.PRINT
            self.with_additions += decision.with_additions
            self.unsolicited += franking.classify_messages(decision.covered) == franking.UNSOLICITED

    def as_dict(self) -> dict[str, object]:
        return {"messages": self.messages, "people": self.people, "letters": self.letters, "covered": self.covered,
                "email": self.email, "print": self.print, "with_additions": self.with_additions,
                "closed": self.closed, "unsolicited": self.unsolicited,
                "counts": {k: v for k, v in sorted(self.counts.items()) if v}}


def batch_message_ids(session: Session, batch_id: int) -> list[int]:
    return list(session.scalars(select(Message.id).where(Message.batch_id == batch_id).order_by(Message.id)))


def _walk(session: Session, people: Sequence[Sequence[int]], facts: Facts, *, letter_id: int | None,
          options: Options, policy: Policy, now: datetime) -> Iterator[tuple[list[Message], Decision]]:
    loaded = _load_people(session, people)
    _load_facts(session, loaded, facts=facts)
    for messages in loaded:
        if not messages:
            continue
        decision = decide(messages, facts, letter_id=letter_id, options=options, policy=policy, now=now)
        if decision.covered:
            _note_letter(facts, decision, letter_id, now)
        yield messages, decision


def plan(session: Session, message_ids: Sequence[int], *, version_id: int | None = None,
         options: Options | None = None, policy: Policy | None = None, now: datetime | None = None,
         rules: franking.Rules | None = None, today: date | None = None) -> Plan:
    """What confirming would do, without changing anything (the same walk and rules as the job), and the
    mass-communication guard's verdict on it (``franking``: the start refuses what it refuses)."""
    options, policy, now = options or Options(), policy or Policy(), now or utcnow()
    letter_id = _letter_of(session, version_id)
    people = group_people(session, message_ids)
    result = Plan(message_ids=sorted(set(message_ids)), people=len(people))
    result.messages = len(result.message_ids)
    facts = Facts()
    for start in range(0, len(people), CHUNK):
        for _messages, decision in _walk(session, people[start:start + CHUNK], facts, letter_id=letter_id,
                                         options=options, policy=policy, now=now):
            result.add(decision)
    rules = rules or franking.Rules()
    # The guard's count is franking's one computation (the start and the follow-up dry run use it too),
    # not this walk's: the numbers a person reads before confirming are the numbers the start checks.
    pieces = franking.unsolicited_pieces(session, result.message_ids, letter_id=letter_id)
    result.franking = franking.check(session, letter_id=letter_id, version_id=version_id, pieces=pieces,
                                     rules=rules, today=today or rules.today(now))
    return result


def _letter_of(session: Session, version_id: int | None) -> int | None:
    if version_id is None:
        return None
    return session.scalar(select(LetterVersion.letter_id).where(LetterVersion.id == version_id))


def _chunks(items: Sequence[int], size: int):
    for i in range(0, len(items), size):
        yield list(items[i:i + size])


def start_run(session: Session, version_id: int, *, actor_id: int, batch_id: int | None = None,
              message_ids: Sequence[int] | None = None, options: Options | None = None,
              rules: franking.Rules | None = None, today: date | None = None) -> ApplyRun:
    version = session.get(LetterVersion, version_id)
    if version is None:
        raise NotFound(f"no letter version {version_id}")
    if version.state != VersionState.APPROVED:
        raise ValidationFailed("only an approved version can be sent; send it for review first")
    problems = validate(version.body) + [f"subject: {p}" for p in validate(version.subject)]
    if problems:  # it reached the database without the check: refuse it before anything is queued
        raise ValidationFailed("this letter cannot be sent: " + "; ".join(problems))
    own = version.letter.one_off_message_id
    if own is not None and (batch_id is not None or sorted(set(message_ids or ())) != [own]):
        raise PermissionDenied(f"this is a one-off reply to message {own}; it answers that message only")
    if batch_id is not None:
        batch = session.get(Batch, batch_id)
        if batch is None:
            raise NotFound(f"no batch {batch_id}")
        ids = batch_message_ids(session, batch_id)
    else:
        ids = sorted(set(message_ids or ()))
    if not ids:
        raise ValidationFailed("there are no messages to answer")
    chosen = options or Options()
    verdict = _guard(session, version, ids, chosen, rules or franking.Rules(), today)
    run = ApplyRun(version_id=version.id, batch_id=batch_id, message_ids=ids, created_by_id=actor_id,
                   total=len(ids), state=RunState.QUEUED, options=chosen.as_dict())
    session.add(run)
    session.flush()
    if batch_id is not None:
        session.execute(update(Batch).where(Batch.id == batch_id, Batch.status == BatchStatus.OPEN)
                        .values(status=BatchStatus.ANSWERED))
    record(session, actor_id=actor_id, action="apply_run.start", object_type="apply_run", object_id=run.id,
           after={"version_id": version.id, "batch_id": batch_id, "messages": len(ids), "options": chosen.as_dict(),
                  "franking": verdict.kind, "unsolicited": verdict.pieces,
                  "approval": verdict.approval.opinion_number if verdict.over and verdict.approval else None})
    return run


def _guard(session: Session, version: LetterVersion, ids: list[int], options: Options, rules: franking.Rules,
           today: date | None) -> franking.Verdict:
    """The mass-communication guard at the start: a run that makes unsolicited letters may not start in
    a blackout, nor above the threshold without an approval. The pieces are counted by
    ``franking.unsolicited_pieces``, the dry runs' own count, in a few aggregate queries (a follow-up
    asked for again, whose people all have the letter, makes nothing and is not refused)."""
    day = today or rules.today()
    pieces = franking.unsolicited_pieces(session, ids, letter_id=version.letter_id)
    verdict = franking.check(session, letter_id=version.letter_id, version_id=version.id, pieces=pieces,
                             rules=rules, today=day)
    problems = verdict.problems()
    if problems:
        raise PermissionDenied("; ".join(problems))
    return verdict

def new_message_id(domain: str) -> str:
    return f"<mailroom.{uuid.uuid4().hex}@{domain}>"


def _domain(settings) -> str:
    return (settings.mail_from.rsplit("@", 1)[-1] or "mailroom.local").strip("> ")


def _render(decision: Decision, subject_source: str, body_source: str, *, settings,
            version_id: int | None, letter_id: int | None, run_id: int | None, actor_id: int | None) -> Response:
    """The person's one letter, rendered in the sandbox with their latest message (not yet flushed)."""
    latest = decision.latest
    if latest is None or decision.method is None:
        raise ValueError("decide() made no letter for this person")
    values = context(latest, latest.constituent, office_of(settings))
    budget = budget_of(settings)
    # The subject becomes a mail header: one line, whatever the merge fields held.
    subject = header_text(render(subject_source, values, budget))[:500] or "Your letter"
    body = render(body_source, values, budget)
    email = decision.method == DeliveryMethod.EMAIL
    return Response(message_id=latest.id, constituent_id=latest.constituent_id, version_id=version_id,
                    letter_id=letter_id, run_id=run_id, method=decision.method,
                    to_address=decision.address if email else None, subject=subject, body_text=body,
                    state=ResponseState.QUEUED if email else ResponseState.TO_PRINT,
                    email_message_id=new_message_id(_domain(settings)), created_by_id=actor_id)


def _record_letters(session: Session, made: Sequence[tuple[Response, Decision]], *, actor_id: int | None) -> None:
    """After the letters are flushed: link every covered message to its letter and queue its answer."""
    rows = [{"message_id": m.id, "response_id": r.id} for r, d in made for m in d.covered]
    if rows:
        session.execute(insert(ResponseMessage), rows)
    queue_answers(session, [(m.id, m.status, r.id) for r, d in made for m in d.covered], actor_id=actor_id)


def _close(session: Session, decision: Decision, *, actor_id: int | None) -> None:
    for m in decision.close:
        close_message(session, m.id, actor_id=actor_id, reason=decision.reason)


def respond(session: Session, message: Message, subject_source: str, body_source: str, *, settings,
            version_id: int | None, run_id: int | None, actor_id: int | None) -> Response | None:
    """A one-off letter to one message (the reply page): None when it is answered already or cannot be."""
    if message.status not in ANSWERABLE or session.get(ResponseMessage, message.id) is not None:
        return None
    method, address = _delivery([message])
    if method is None:
        return None
    decision = Decision(key=("m", message.id), covered=[message], latest=message, method=method, address=address)
    letter_id = _letter_of(session, version_id)
    response = _render(decision, subject_source, body_source, settings=settings, version_id=version_id,
                       letter_id=letter_id, run_id=run_id, actor_id=actor_id)
    session.add(response)
    session.flush()
    _record_letters(session, [(response, decision)], actor_id=actor_id)
    return response


def _run_chunk(db: Database, run_id: int, people: Sequence[Sequence[int]], settings, *,
               now: datetime) -> list[int]:
    """One transaction: decide and act for these people, advance the run; returns the email letters made."""
    with db.unit_of_work() as s:
        run = s.get_one(ApplyRun, run_id)
        version = s.get_one(LetterVersion, run.version_id)
        options, policy = Options.from_mapping(run.options), Policy.of(settings)
        facts = Facts()
        made: list[tuple[Response, Decision]] = []
        counts: Counter[str] = Counter()
        closed = 0
        for _messages, decision in _walk(s, people, facts, letter_id=version.letter_id, options=options,
                                        policy=policy, now=now):
            counts += decision.counts
            if decision.close:
                _close(s, decision, actor_id=run.created_by_id)
                closed += len(decision.close)
            if decision.covered:
                made.append((_render(decision, version.subject, version.body, settings=settings,
                                     version_id=version.id, letter_id=version.letter_id, run_id=run_id,
                                     actor_id=run.created_by_id), decision))
        s.add_all([r for r, _d in made])
        s.flush()  # the unique indexes speak here: a person answered by another run at the same moment
        _record_letters(s, made, actor_id=run.created_by_id)
        handled = sum(len(p) for p in people)
        covered = sum(len(d.covered) for _r, d in made)
        run.counts = dict(Counter(run.counts or {}) + counts)
        run.people_done += len(people)
        run.done += handled
        run.created_count += len(made)
        run.covered += covered
        run.closed += closed
        run.skipped += handled - covered
        return [r.id for r, d in made if d.method == DeliveryMethod.EMAIL]


def execute_run(db: Database, run_id: int, settings, *,
                enqueue_email: Callable[[list[int]], None] | None = None,
                build_print: Callable[[Session, ApplyRun], str | None] | None = None,
                chunk_people: int = CHUNK) -> ApplyRun:
    """The job: people in chunks, one transaction each; resumable (it starts after the last chunk it
    committed) and safe to run twice (the rules skip whatever is answered, the database refuses a
    second letter to the same message or the same person)."""
    with db.unit_of_work() as s:
        run = s.get(ApplyRun, run_id)
        if run is None:
            raise NotFound(f"no apply run {run_id}")
        if run.state == RunState.DONE:
            return run
        ids, version_id = list(run.message_ids), run.version_id
        own = s.get_one(LetterVersion, version_id).letter.one_off_message_id
        refused = None
        if own is not None and ids != [own]:
            # A run recorded before start_run checked this: a one-off reply answers its own message only.
            refused = f"a one-off reply to message {own} answers that message only; nothing was sent"
            run.error = refused
            APPLY_RUNS.move(s, run, RunState.FAILED, actor_id=None, action="apply_run.refused", detail=refused)
        else:
            APPLY_RUNS.move(s, run, RunState.RUNNING, actor_id=None, action="apply_run.run")
            people = group_people(s, ids)
            run.people = len(people)
            start = run.people_done
    if refused is not None:
        raise PermissionDenied(refused)
    now = utcnow()
    for first in range(start, len(people), chunk_people):
        chunk = people[first:first + chunk_people]
        for attempt in range(1, RACE_RETRIES + 1):
            try:
                emails = _run_chunk(db, run_id, chunk, settings, now=now)
                break
            except IntegrityError:
                # Another run answered some of these people at the same moment: do the chunk again; this
                # time the rules see that run's letters (closed "already sent", or "already answered").
                log.warning("apply run_id=%s chunk raced another run attempt=%d; doing it again", run_id, attempt)
                if attempt == RACE_RETRIES:
                    raise
            except LetterError as exc:
                with db.unit_of_work() as s:
                    run = s.get_one(ApplyRun, run_id)
                    run.error = str(exc)[:500]
                    APPLY_RUNS.move(s, run, RunState.FAILED, actor_id=None, action="apply_run.fail", detail=run.error)
                raise
        if emails and enqueue_email is not None:
            enqueue_email(emails)
    with db.unit_of_work() as s:
        run = s.get_one(ApplyRun, run_id)
        if build_print is not None:
            run.print_sha256 = build_print(s, run)
            if run.print_sha256:
                # The print file is made: the letters for the post have left Mailroom's hands.
                printed = list(s.scalars(select(Response.id).where(Response.run_id == run_id,
                                                                   Response.method == DeliveryMethod.PRINT)))
                answers_left(s, printed, actor_id=None, how="print file made")
        run.finished_at = utcnow()
        letter = s.get_one(FormLetter, s.get_one(LetterVersion, run.version_id).letter_id)
        letter.usage_count += run.created_count
        letter.last_used_at = utcnow()
        APPLY_RUNS.move(s, run, RunState.DONE, actor_id=run.created_by_id, action="apply_run.finish",
                        after={"letters": run.created_count, "people": run.people, "messages": run.total,
                               "covered": run.covered, "closed": run.closed, "skipped": run.skipped})
    return run


def waiting_emails(session: Session) -> int:
    """Letters rendered and waiting for the SMTP server (the no-SMTP banner; served by ix_responses_state)."""
    return session.scalar(select(func.count()).select_from(Response).where(
        Response.state == ResponseState.QUEUED)) or 0

def queue_apply_run(session: Session, version_id: int, *, actor_id: int, batch_id: int | None = None,
                    message_ids: Sequence[int] | None = None, options: Options | None = None,
                    rules: franking.Rules | None = None, today: date | None = None) -> Done[ApplyRun]:
    """Start an apply run (`start_run`) and ask for its job, which the boundary queues after the commit."""
    run = start_run(session, version_id, actor_id=actor_id, batch_id=batch_id, message_ids=message_ids,
                    options=options, rules=rules, today=today)
    return Done(run, (Effect.of("apply_run", run.id),))


def print_file(session: Session, run: ApplyRun, office: Office, on: date) -> str | None:
    """The run's print-ready PDF of its postal letters, stored as a blob (its sha256); None without any."""
    from drafting.printing import letters_pdf, print_responses

    items = print_responses(session, run)
    if not items:
        return None
    return store_blob(session, letters_pdf(items, office, on.strftime("%B %-d, %Y")), "application/pdf")


def reply_now(session: Session, message_id: int, *, subject: str, body: str, settings,
              actor_id: int) -> Done[Response]:
    """A one-off reply that needs no approval (the office's choice): checked, rendered and recorded now;
    an email goes out after the commit (the send effect), a postal letter waits for its print file."""
    message = session.get(Message, message_id)
    if message is None:
        raise NotFound(f"no message {message_id}")
    problems = validate(body) + [f"subject: {p}" for p in validate(subject)]
    if problems:
        raise ValidationFailed("; ".join(problems))
    answer = respond(session, message, subject, body, settings=settings, version_id=None, run_id=None,
                     actor_id=actor_id)
    if answer is None:
        raise ValidationFailed("this message cannot be answered: it has no address, or is closed")
    return Done(answer, (Effect.of("send", answer.id),) if answer.method == DeliveryMethod.EMAIL else ())
