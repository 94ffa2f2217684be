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
needs its own opinion). Splitting a run is not offered: sending identical text in pieces of 499 does not
make it compliant, and the count is per year anyway.

**Blackout.** Elections the office enters (primary, general, special, runoff) each close a window of
``Rules.blackout_days`` days (default 90, the House rule; a Senate office sets 60) before the election,
election day included: no unsolicited mass communication may start inside it. Answers are never blocked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from rapidfuzz import fuzz
from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from correspondence.errors import NotFound, ValidationFailed
from correspondence.models import (
    Direction,
    Election,
    ElectionKind,
    FormLetter,
    LetterVersion,
    MassMailApproval,
    Message,
    Response,
    ResponseState,
    VersionState,
)
from correspondence.services.audit import record

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
            found.append("an unsolicited mass communication cannot start in an election blackout ("
                         + "; ".join(w.label for w in self.blocked_by) + ")")
        if self.needs_approval and self.year:
            found.append(f"{self.total} substantially identical unsolicited pieces in the legislative year "
                         f"{self.year[0]:%B %-d, %Y} – {self.year[1]:%B %-d, %Y} is more than {self.threshold}: "
                         "record the advisory opinion's approval for this letter first")
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


def unsolicited_people(session: Session, message_ids: list[int]) -> int:
    """An upper bound of the unsolicited letters a run over these messages makes: one per person (record,
    else address, else message) among the messages Mailroom wrote first (follow-ups)."""
    total = 0
    for first in range(0, len(message_ids), 2000):
        chunk = message_ids[first:first + 2000]
        rows = session.execute(select(Message.id, Message.constituent_id, Message.from_address)
                               .where(Message.id.in_(chunk), Message.direction == Direction.OUTBOUND,
                                      _not_to_subscribers())).all()
        total += len({("c", c) if c is not None else ("e", (a or "").lower()) if a else ("m", i)
                      for i, c, a in rows})
    return total


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
