"""The mass-communication (franking) guard and the blackout calendar: pure rules, and the queries they need.

**Classification.** A letter that answers a person's own message (an inbound message) is *solicited* and
is never held back here. A letter to a person who did not write — a segment follow-up, whose message is
an outbound record Mailroom made (``constituents.segments.follow_up_messages``) — is an *unsolicited
mass communication*; so is any run that makes such letters (only those letters are counted). A newsletter
piece to an opted-in subscriber (``outbound.newsletters``: its message's source starts with
``SUBSCRIBER_SOURCE``) is *exempt*: classified ``NEWSLETTER``, never counted, never blocked.

**Threshold.** More than ``Rules.threshold`` (default 499, the House rule) substantially identical
unsolicited pieces in one legislative year (3 January to 2 January, from the office's local date) need
a recorded approval (an advisory opinion: number, date, who recorded it) before a run may start. Pieces
are counted per *letter family*: every version of the letter being sent, plus any other letter whose
text (subject and body template, lower-cased, whitespace collapsed) is ≥ 0.9 similar to it by
rapidfuzz's ``fuzz.ratio`` — the same library and measure the batching uses to call two messages the
same campaign, here stricter (0.9) because a letter template with a changed sentence or two is still
"substantially identical" while a rewritten letter is not. An approval is recorded for one letter and
one legislative year and covers all versions of that letter (not its near-identical cousins: each text
needs its own opinion). A run may be cut to the first pieces up to the threshold ("split at 499",
``first_pieces``), with the warning that sending identical text in pieces of 499 does not make it
compliant: the count is per year, and the next run of the same text counts on from there.

**Blackout.** Elections the office enters (primary, general, special, runoff) each close a window of
``Rules.blackout_days`` days (default 90, the House rule; a Senate office sets 60) before the election,
election day included: no unsolicited mass communication may start inside it. Answers are never blocked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from rapidfuzz import fuzz
from sqlalchemy import ColumnElement, Select, String, Subquery, and_, cast, func, literal, or_, select
from sqlalchemy.orm import Session

from correspondence.errors import NotFound, ValidationFailed
from correspondence.models import (
    Constituent,
    ConstituentEmail,
    Direction,
    Election,
    ElectionKind,
    FormLetter,
    LetterVersion,
    MassMailApproval,
    Message,
    Response,
    ResponseMessage,
    ResponseState,
    Suppression,
    VersionState,
)
from correspondence.services.audit import record
from correspondence.states import ANSWERABLE

SOLICITED = "solicited"
UNSOLICITED = "unsolicited"
# A newsletter piece to an opted-in subscriber (outbound.newsletters) is exempt: its message's source starts
# with this. It is not an unsolicited mass communication and does not count toward the threshold.
NEWSLETTER = "newsletter"
SUBSCRIBER_SOURCE = "newsletter-subscribers:"
SIMILAR = 0.9  # rapidfuzz ratio (0–1) at or above which two letters are one family
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Rules:
    """The office's franking rules (settings), as values."""

    threshold: int = 499
    blackout_days: int = 90
    timezone: str = "America/New_York"

    @classmethod
    def of(cls, settings) -> Rules:
        return cls(threshold=int(getattr(settings, "mass_mail_threshold", cls.threshold)),
                   blackout_days=int(getattr(settings, "blackout_days", cls.blackout_days)),
                   timezone=str(getattr(settings, "timezone", cls.timezone)))

    def today(self, now: datetime | None = None) -> date:
        zone = ZoneInfo(self.timezone)
        return (now.astimezone(zone) if now is not None else datetime.now(zone)).date()


def legislative_year(day: date) -> tuple[date, date]:
    """The legislative year a day falls in: 3 January to 2 January (both included)."""
    start = date(day.year, 1, 3) if day >= date(day.year, 1, 3) else date(day.year - 1, 1, 3)
    return start, date(start.year + 1, 1, 2)


def classify(directions: object) -> str:
    """A letter (or run) whose messages include one Mailroom wrote first is unsolicited; else solicited."""
    return UNSOLICITED if any(d == Direction.OUTBOUND for d in directions) else SOLICITED  # type: ignore[attr-defined]


def to_subscriber(source: str | None) -> bool:
    """Whether a message Mailroom wrote is a newsletter piece to an opted-in subscriber (exempt)."""
    return (source or "").startswith(SUBSCRIBER_SOURCE)


def classify_messages(messages: Iterable[Message]) -> str:
    """``classify`` for loaded messages: newsletter pieces to opted-in subscribers are exempt (NEWSLETTER)."""
    outbound = [m for m in messages if m.direction == Direction.OUTBOUND]
    if not outbound:
        return SOLICITED
    return NEWSLETTER if all(to_subscriber(m.source) for m in outbound) else UNSOLICITED


def _not_to_subscribers() -> ColumnElement[bool]:
    return or_(Message.source.is_(None), ~Message.source.startswith(SUBSCRIBER_SOURCE, autoescape=True))


@dataclass(frozen=True)
class Blackout:
    election: Election
    starts: date
    ends: date  # election day

    @property
    def label(self) -> str:
        return (f"{self.election.kind.value} election on {self.ends:%B %-d, %Y}: no mass mail "
                f"{self.starts:%B %-d, %Y} – {self.ends:%B %-d, %Y}")


def blackouts(session: Session, today: date, rules: Rules, *,
              upcoming: int = 3) -> tuple[list[Blackout], list[Blackout]]:
    """(windows today falls in, the next windows not yet begun) from the elections entered."""
    elections = session.scalars(select(Election).where(Election.election_date >= today)
                                .order_by(Election.election_date, Election.id))
    windows = [Blackout(e, e.election_date - timedelta(days=rules.blackout_days), e.election_date) for e in elections]
    now = [w for w in windows if w.starts <= today <= w.ends]
    return now, [w for w in windows if w.starts > today][:upcoming]


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text or "").strip().lower()


def similar(a: str, b: str) -> float:
    """How alike two letter texts are, 0–1 (rapidfuzz ratio on lower-cased, whitespace-collapsed text)."""
    return fuzz.ratio(_norm(a), _norm(b)) / 100.0


def _text(version: LetterVersion) -> str:
    return f"{version.subject}\n{version.body}"


@dataclass
class Verdict:
    """What the guard says about one run: shown on the dry run, enforced at the start."""

    kind: str
    pieces: int = 0  # unsolicited letters this run makes
    threshold: int = 499
    year: tuple[date, date] | None = None
    earlier: int = 0  # unsolicited pieces of the same family already made this legislative year
    family: list[tuple[int, str, int]] = field(default_factory=list)  # (letter id, title, pieces this year)
    approval: MassMailApproval | None = None
    blocked_by: list[Blackout] = field(default_factory=list)  # windows today is inside
    upcoming: list[Blackout] = field(default_factory=list)

    @property
    def unsolicited(self) -> bool:
        return self.kind == UNSOLICITED

    @property
    def total(self) -> int:
        return self.earlier + self.pieces

    @property
    def over(self) -> bool:
        return self.unsolicited and self.total > self.threshold

    @property
    def needs_approval(self) -> bool:
        return self.over and self.approval is None

    @property
    def blocked(self) -> bool:
        return self.unsolicited and bool(self.blocked_by)

    def problems(self) -> list[str]:
        found = []
        if self.blocked:
            found.append("letters to people who did not write to us cannot go out during an election blackout ("
                         + "; ".join(w.label for w in self.blocked_by) + ")")
        if self.needs_approval and self.year:
            found.append(f"this would make {self.total:,} nearly identical letters to people who did not write to "
                         f"us in the legislative year {self.year[0]:%B %-d, %Y} – {self.year[1]:%B %-d, %Y}, more "
                         f"than the {self.threshold:,} allowed without approval. An administrator must first "
                         "record the advisory opinion approving this letter (Elections and mass mail)")
        return found


def check(session: Session, *, letter_id: int | None, version_id: int | None, pieces: int, rules: Rules,
          today: date) -> Verdict:
    """The verdict on a run making ``pieces`` unsolicited letters of this letter (version) on ``today``."""
    now_in, upcoming = blackouts(session, today, rules)
    if pieces <= 0:
        return Verdict(SOLICITED, threshold=rules.threshold, upcoming=now_in + upcoming)
    start, end = legislative_year(today)
    verdict = Verdict(UNSOLICITED, pieces=pieces, threshold=rules.threshold, year=(start, end),
                      blocked_by=now_in, upcoming=upcoming)
    if letter_id is None:
        return verdict
    family = letter_family(session, letter_id, version_id, start, end, rules)
    verdict.family = family
    verdict.earlier = sum(n for _id, _t, n in family)
    verdict.approval = session.scalar(select(MassMailApproval).where(
        MassMailApproval.letter_id == letter_id, MassMailApproval.year_start == start)
        .order_by(MassMailApproval.id.desc()).limit(1))
    return verdict


def _bounds(start: date, end: date, rules: Rules) -> tuple[datetime, datetime]:
    zone = ZoneInfo(rules.timezone)
    return datetime.combine(start, time.min, zone), datetime.combine(end + timedelta(days=1), time.min, zone)


def letter_family(session: Session, letter_id: int, version_id: int | None, start: date, end: date,
                  rules: Rules) -> list[tuple[int, str, int]]:
    """(letter id, title, unsolicited pieces made in the year) for the letter and every letter whose text
    used this year is ≥ 0.9 similar to the version being sent (or, without one, the letter's latest
    approved version); failed letters did not go out and are not counted."""
    low, high = _bounds(start, end, rules)
    rows = session.execute(
        select(Response.letter_id, Response.version_id, func.count())
        .join(Message, Message.id == Response.message_id)
        .where(Message.direction == Direction.OUTBOUND, _not_to_subscribers(), Response.letter_id.is_not(None),
               Response.created_at >= low, Response.created_at < high, Response.state != ResponseState.FAILED)
        .group_by(Response.letter_id, Response.version_id)).all()
    sending = session.get(LetterVersion, version_id) if version_id is not None else None
    if sending is None:
        sending = session.scalar(select(LetterVersion).where(LetterVersion.letter_id == letter_id,
                                                             LetterVersion.state == VersionState.APPROVED)
                                 .order_by(LetterVersion.id.desc()).limit(1))
    counts: dict[int, int] = {letter_id: 0}
    others: dict[int, list[tuple[int | None, int]]] = {}
    for other, version, n in rows:
        if other == letter_id:
            counts[letter_id] += n
        elif other is not None:  # always: the query leaves out letters without one
            others.setdefault(other, []).append((version, n))
    if sending is not None and others:
        text = _text(sending)
        versions = {v.id: v for v in session.scalars(select(LetterVersion).where(LetterVersion.id.in_(
            [v for items in others.values() for v, _n in items if v is not None])))}
        for other, items in others.items():
            if any(v in versions and similar(text, _text(versions[v])) >= SIMILAR for v, _n in items):
                counts[other] = sum(n for _v, n in items)
    titles = dict(session.execute(select(FormLetter.id, FormLetter.title).where(FormLetter.id.in_(counts))).all())
    return [(i, titles.get(i, f"letter {i}"), counts[i]) for i in sorted(counts, key=lambda i: (i != letter_id, i))]


# --- how many pieces: one computation for the dry runs and the start -----------------------------

@dataclass(frozen=True)
class _Rule:
    person: Any  # one key per person: their record, else their lower-cased address
    reachable: Any  # an email address not suppressed, or no email and a whole postal address
    by_email: Any
    had_letter: Any  # already sent this letter (false without a letter)


def _rule(candidates: Subquery, letter_id: int | None) -> _Rule:
    c = candidates.c
    address = func.lower(func.trim(func.coalesce(c.address, "")))
    suppressed = select(Suppression.id).where(Suppression.address == address,
                                              Suppression.reason.is_not(None)).exists()
    postal = select(Constituent.id).where(
        Constituent.id == c.constituent_id, Constituent.address1.is_not(None), Constituent.address1 != "",
        Constituent.city.is_not(None), Constituent.city != "", Constituent.state.is_not(None),
        Constituent.state != "", Constituent.zip5.is_not(None), Constituent.zip5 != "").exists()
    had = (select(Response.id).where(Response.constituent_id == c.constituent_id, Response.letter_id == letter_id)
           .exists() if letter_id is not None else literal(False))
    return _Rule(func.coalesce(cast(c.constituent_id, String), address),
                 or_(and_(address != "", ~suppressed), and_(address == "", postal)), address != "", had)


def _pieces_of(candidates: Subquery, letter_id: int | None) -> Select[Any]:
    """The people among ``candidates`` (columns ``constituent_id``, ``address``, ``message_id``) who get an
    unsolicited piece: an email address not suppressed (any reason stops a follow-up), or no email and a
    whole postal address; and not already sent this letter. One key per person (their record, else their
    lower-cased address). This is the whole rule the follow-up dry run, the apply dry run and the start
    use, so the number a person reads before confirming is the number the start counts. It is counted
    before the run's own choices (frequent writer, in-district only), which can only make fewer pieces."""
    rule = _rule(candidates, letter_id)
    return select(rule.person.label("person")).where(rule.reachable, ~rule.had_letter)


@dataclass(frozen=True)
class FollowUpCounts:
    email: int  # pieces by email
    post: int  # pieces by post
    already_sent: int  # people who could be reached but already have this letter

    @property
    def pieces(self) -> int:
        return self.email + self.post


def follow_up_counts(session: Session, people: Select[Any], *, letter_id: int | None) -> FollowUpCounts:
    """The follow-up dry run's numbers by the pieces rule (``_rule``): by email, by post, already sent."""
    rule = _rule(people_candidates(people), letter_id)
    # Grouped over a subquery's columns: PostgreSQL wants GROUP BY to name what SELECT names, and an
    # expression with bound values would be two different expressions to it.
    each = select(rule.person.label("person"), rule.by_email.label("by_email"),
                  rule.had_letter.label("had")).where(rule.reachable).subquery()
    counts = {(bool(email), bool(had)): n for email, had, n in session.execute(
        select(each.c.by_email, each.c.had, func.count(func.distinct(each.c.person)))
        .group_by(each.c.by_email, each.c.had))}
    return FollowUpCounts(counts.get((True, False), 0), counts.get((False, False), 0),
                          counts.get((True, True), 0) + counts.get((False, True), 0))


def _message_candidates(message_ids: Sequence[int]) -> Subquery:
    """A run's follow-up messages still to answer (not answered, in a state a run answers)."""
    answered = select(ResponseMessage.message_id).where(ResponseMessage.message_id == Message.id).exists()
    return (select(Message.constituent_id.label("constituent_id"), Message.from_address.label("address"),
                   Message.id.label("message_id"))
            .where(Message.id.in_(message_ids), Message.direction == Direction.OUTBOUND, _not_to_subscribers(),
                   Message.status.in_(ANSWERABLE), ~answered).subquery())


def people_candidates(people: Select[Any]) -> Subquery:
    """Constituents (a select of their ids) as a follow-up would reach them: their first email address."""
    first = (select(ConstituentEmail.address).where(ConstituentEmail.constituent_id == Constituent.id)
             .order_by(ConstituentEmail.id).limit(1).scalar_subquery())
    return (select(Constituent.id.label("constituent_id"), first.label("address"),
                   Constituent.id.label("message_id"))
            .where(Constituent.id.in_(people)).subquery())


def pieces_for_people(session: Session, people: Select[Any], *, letter_id: int | None) -> int:
    """Unsolicited pieces a follow-up of this letter to these constituents makes (one aggregate query)."""
    return follow_up_counts(session, people, letter_id=letter_id).pieces


def unsolicited_pieces(session: Session, message_ids: Sequence[int], *, letter_id: int | None) -> int:
    """Unsolicited pieces a run over these messages makes: the same rule (``_pieces_of``) as the
    follow-up dry run, one query per 2,000 messages, people counted once across the chunks."""
    people: set[str] = set()
    ids = sorted(set(message_ids))
    for first in range(0, len(ids), 2000):
        people.update(session.scalars(_pieces_of(_message_candidates(ids[first:first + 2000]), letter_id)
                                      .distinct()))
    return len(people)


def first_pieces(session: Session, message_ids: Sequence[int], *, letter_id: int | None,
                 limit: int) -> tuple[list[int], int]:
    """("split at the threshold") the messages of the first ``limit`` people (by message) who get a piece,
    and how many more people would have got one. Solicited messages in the selection are kept."""
    ids = sorted(set(message_ids))
    kept: list[int] = []
    people: dict[str, list[int]] = {}
    for first in range(0, len(ids), 2000):
        chunk = ids[first:first + 2000]
        candidates = _message_candidates(chunk)
        rows = session.execute(_pieces_of(candidates, letter_id).add_columns(candidates.c.message_id)
                               .order_by(candidates.c.message_id)).all()
        for person, message_id in rows:
            people.setdefault(person, []).append(message_id)
        outbound = set(session.scalars(select(Message.id).where(Message.id.in_(chunk),
                                                                Message.direction == Direction.OUTBOUND)))
        kept.extend(i for i in chunk if i not in outbound)
    chosen = list(people.values())[:max(limit, 0)]
    return sorted(kept + [i for group in chosen for i in group]), max(len(people) - len(chosen), 0)


SPLIT_WARNING = ("Sending only the first letters up to the limit keeps this run under it, but it does not make "
                 "the mailing compliant: nearly identical text sent in parts is still one mass mailing, and "
                 "every later run of this letter this legislative year counts on from here.")


def split_at_threshold(session: Session, message_ids: Sequence[int], *, letter_id: int, rules: Rules, today: date,
                       actor_id: int) -> tuple[list[int], int]:
    """"Split at 499": the messages of only as many people as the letter family may still get this
    legislative year without an approval (the threshold less what went out already), and how many people
    are left out; audited with the warning, because splitting identical text does not make it compliant."""
    start, end = legislative_year(today)
    earlier = sum(n for _i, _t, n in letter_family(session, letter_id, None, start, end, rules))
    room = rules.threshold - earlier
    if room <= 0:
        raise ValidationFailed(f"this letter's family already has {earlier:,} letters to people who did not write "
                               f"to us this legislative year: none can go out without the advisory opinion")
    kept, left_out = first_pieces(session, message_ids, letter_id=letter_id, limit=room)
    record(session, actor_id=actor_id, action="mass_mail.split", object_type="form_letter", object_id=letter_id,
           after={"pieces": min(room, unsolicited_pieces(session, kept, letter_id=letter_id)), "left_out": left_out,
                  "threshold": rules.threshold, "earlier": earlier, "legislative_year": start.isoformat()},
           detail=SPLIT_WARNING)
    return kept, left_out


# --- the calendar and the approvals (use cases) ----------------------------------------------------

def add_election(session: Session, *, kind: str, election_date: date, note: str = "", actor_id: int) -> Election:
    try:
        chosen = ElectionKind(kind)
    except ValueError as exc:
        raise ValidationFailed("the election must be a primary, general, special or runoff election") from exc
    if session.scalar(select(Election.id).where(Election.kind == chosen, Election.election_date == election_date)):
        raise ValidationFailed(f"the {chosen.value} election on {election_date.isoformat()} is already entered")
    election = Election(kind=chosen, election_date=election_date, note=note.strip()[:200] or None,
                        created_by_id=actor_id)
    session.add(election)
    session.flush()
    record(session, actor_id=actor_id, action="election.add", object_type="election", object_id=election.id,
           after={"kind": chosen.value, "date": election_date.isoformat(), "note": election.note})
    return election


def remove_election(session: Session, election_id: int, *, actor_id: int) -> None:
    election = session.get(Election, election_id)
    if election is None:
        raise NotFound(f"no election {election_id}")
    record(session, actor_id=actor_id, action="election.remove", object_type="election", object_id=election.id,
           before={"kind": election.kind.value, "date": election.election_date.isoformat(), "note": election.note})
    session.delete(election)
    session.flush()


def record_approval(session: Session, letter_id: int, *, opinion_number: str, opinion_date: date,
                    actor_id: int, rules: Rules, today: date | None = None) -> MassMailApproval:
    """Record an advisory opinion allowing this letter above the threshold in the legislative year of the
    opinion's date."""
    letter = session.get(FormLetter, letter_id)
    if letter is None:
        raise NotFound(f"no letter {letter_id}")
    number = " ".join(opinion_number.split())
    if not number:
        raise ValidationFailed("give the advisory opinion's number")
    if len(number) > 100:
        raise ValidationFailed("the advisory opinion's number is longer than 100 characters")
    if opinion_date > (today or rules.today()):
        raise ValidationFailed("the advisory opinion's date is in the future")
    start, _end = legislative_year(opinion_date)
    approval = MassMailApproval(letter_id=letter.id, year_start=start, opinion_number=number,
                                opinion_date=opinion_date, recorded_by_id=actor_id)
    session.add(approval)
    session.flush()
    record(session, actor_id=actor_id, action="mass_mail_approval.record", object_type="form_letter",
           object_id=letter.id, after={"opinion_number": number, "opinion_date": opinion_date.isoformat(),
                                       "legislative_year": start.isoformat()})
    return approval


def list_elections(session: Session) -> list[Election]:
    return list(session.scalars(select(Election).order_by(Election.election_date.desc(), Election.id)))


def list_approvals(session: Session) -> list[tuple[MassMailApproval, str]]:
    rows = session.execute(select(MassMailApproval, FormLetter.title)
                           .join(FormLetter, FormLetter.id == MassMailApproval.letter_id)
                           .order_by(MassMailApproval.year_start.desc(), MassMailApproval.id.desc()))
    return [(approval, title) for approval, title in rows]
