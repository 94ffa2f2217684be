"""Mass communications per quarter (the Senate reports them quarterly; a House office keeps the same
figures): for each calendar quarter of a year, and for the legislative year (3 January – 2 January), the
unsolicited letters that went out (follow-ups: letters on a message Mailroom wrote first, as
``outbound.franking`` classifies them), per letter family, with pieces by email and by post and their
cost at the office's cost per piece (settings: email 0 by default, a printed letter its postage and print).

A piece counts on the day it went out: an email when the server took it (``sent_at``), a printed letter
when it was made for the print file. Letters that failed or are still waiting did not go out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from correspondence.csvsafe import to_csv
from correspondence.models import DeliveryMethod, Direction, FormLetter, LetterVersion, Message, Response, ResponseState
from outbound.franking import SIMILAR, legislative_year, similar


@dataclass(frozen=True)
class Costs:
    """What one piece costs the office, in dollars."""

    email: Decimal = Decimal("0")
    printed: Decimal = Decimal("0.78")

    @classmethod
    def of(cls, settings) -> Costs:
        return cls(Decimal(str(getattr(settings, "mass_mail_cost_email", cls.email))),
                   Decimal(str(getattr(settings, "mass_mail_cost_print", cls.printed))))


@dataclass
class Line:
    """One letter family in one period."""

    family: str  # the family's first letter's title
    letters: list[str]
    mailings: int = 0  # runs that sent pieces of it
    email: int = 0
    printed: int = 0
    cost: Decimal = Decimal("0")

    @property
    def pieces(self) -> int:
        return self.email + self.printed


@dataclass
class Period:
    label: str
    starts: date
    ends: date  # included
    lines: list[Line] = field(default_factory=list)

    @property
    def pieces(self) -> int:
        return sum(line.pieces for line in self.lines)

    @property
    def cost(self) -> Decimal:
        return sum((line.cost for line in self.lines), Decimal("0"))


def quarters(year: int) -> list[tuple[str, date, date]]:
    """The four calendar quarters of a year, as (label, first day, last day)."""
    out = []
    for q, month in enumerate((1, 4, 7, 10), start=1):
        end = date(year + (month == 10), 1 if month == 10 else month + 3, 1) - timedelta(days=1)
        out.append((f"Q{q} {year} ({date(year, month, 1):%B %-d} – {end:%B %-d})", date(year, month, 1), end))
    return out


def _families(session: Session, letter_ids: set[int]) -> dict[int, int]:
    """Each letter's family: the lowest-id letter whose latest version's text is ≥ 0.9 alike (franking's
    measure), so the report groups substantially identical letters as the guard counts them."""
    latest: dict[int, str] = {}
    for letter_id, subject, body in session.execute(
            select(LetterVersion.letter_id, LetterVersion.subject, LetterVersion.body)
            .where(LetterVersion.letter_id.in_(letter_ids)).order_by(LetterVersion.id)):
        latest[letter_id] = f"{subject}\n{body}"
    family: dict[int, int] = {}
    heads: list[int] = []
    for letter_id in sorted(latest):
        head = next((h for h in heads if similar(latest[h], latest[letter_id]) >= SIMILAR), None)
        if head is None:
            heads.append(letter_id)
            head = letter_id
        family[letter_id] = head
    return family


def _period(session: Session, label: str, starts: date, ends: date, zone: ZoneInfo, costs: Costs) -> Period:
    low = datetime.combine(starts, time.min, zone)
    high = datetime.combine(ends + timedelta(days=1), time.min, zone)
    went = func.coalesce(Response.sent_at, Response.created_at)
    rows = session.execute(
        select(Response.letter_id, Response.method, func.count(), func.count(func.distinct(Response.run_id)))
        .join(Message, Message.id == Response.message_id)
        .where(Message.direction == Direction.OUTBOUND, Response.letter_id.is_not(None),
               ((Response.state == ResponseState.SENT) & (Response.method == DeliveryMethod.EMAIL))
               | ((Response.state == ResponseState.TO_PRINT) & (Response.method == DeliveryMethod.PRINT)),
               went >= low, went < high)
        .group_by(Response.letter_id, Response.method)).all()
    period = Period(label, starts, ends)
    if not rows:
        return period
    letter_ids = {r[0] for r in rows if r[0] is not None}
    families = _families(session, letter_ids)
    titles = dict(session.execute(select(FormLetter.id, FormLetter.title)
                                  .where(FormLetter.id.in_(set(families.values()) | letter_ids))).all())
    lines: dict[int, Line] = {}
    for letter_id, method, pieces, runs in rows:
        if letter_id is None:  # never: the query leaves them out
            continue
        head = families.get(letter_id, letter_id)
        line = lines.setdefault(head, Line(titles.get(head, f"letter {head}"), []))
        name = titles.get(letter_id, f"letter {letter_id}")
        if name not in line.letters:
            line.letters.append(name)
        line.mailings = max(line.mailings, runs)
        if method == DeliveryMethod.EMAIL:
            line.email += pieces
            line.cost += costs.email * pieces
        else:
            line.printed += pieces
            line.cost += costs.printed * pieces
    period.lines = sorted(lines.values(), key=lambda line: (-line.pieces, line.family))
    return period


def quarterly_report(session: Session, year: int, *, costs: Costs, timezone: str) -> list[Period]:
    """The year's four quarters, then the legislative year that starts on 3 January of it."""
    zone = ZoneInfo(timezone)
    periods = [_period(session, label, a, b, zone, costs) for label, a, b in quarters(year)]
    start, end = legislative_year(date(year, 6, 1))
    periods.append(_period(session, f"Legislative year {start:%B %-d, %Y} – {end:%B %-d, %Y}", start, end, zone,
                           costs))
    return periods


def report_csv(periods: list[Period]) -> str:
    """One row per period and letter family (a period with none has one row of zeros); cells that a
    spreadsheet would run as formulas are made safe (correspondence.csvsafe)."""
    header = ["period", "first_day", "last_day", "letter_family", "letters", "mailings", "email_pieces",
              "printed_pieces", "pieces", "cost_usd"]
    rows = [[p.label, p.starts.isoformat(), p.ends.isoformat(), line.family, "; ".join(line.letters), line.mailings,
             line.email, line.printed, line.pieces, f"{line.cost:.2f}"]
            for p in periods for line in (p.lines or [Line("(none)", [])])]
    return to_csv(header, rows)
