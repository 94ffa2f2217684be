"""The advisory-opinion packet: what an office submits to ask approval for a mass communication.

Two files for one letter version and the people it would go to: the exact email as it will be sent
(``drafting.send.build_email``: headers, the one-click unsubscribe header and footer link, the DKIM
signature when a key is configured), rendered for a sample recipient (the first person), as
``message.eml``; and ``packet.pdf`` (WeasyPrint, no outside resources) with the counts — pieces in this
mailing, the letter family's pieces already made in the legislative year, the threshold — and where the
recipients live by state, three-digit ZIP prefix and city (what the constituent records hold).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from jinja2 import Environment, select_autoescape
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from correspondence.errors import NotFound, ValidationFailed
from correspondence.models import ApplyRun, Constituent, Direction, LetterVersion, Message, Response
from outbound import franking

_ENV = Environment(autoescape=select_autoescape(default=True, default_for_string=True))


@dataclass(frozen=True)
class Geography:
    """Where the recipients live, as counts (largest first)."""

    people: int
    states: list[tuple[str, int]]
    zip3: list[tuple[str, int]]
    cities: list[tuple[str, int]]
    in_district: int
    unknown: int  # no state or ZIP on the record
    zip3_other: int = 0  # people in the ZIP areas past the largest ZIP3_ROWS (the PDF's length stays bounded)


# A district spans a handful of ZIP3 areas; a mailing that reaches hundreds would make a PDF of dozens of pages
# (seconds of WeasyPrint per page) for rows nobody reads: the largest are listed, the rest summed.
ZIP3_ROWS = 60


def geography(session: Session, constituent_ids: Sequence[int]) -> Geography:
    """Counts by state, ZIP3 and city of these constituents (one query per 2,000)."""
    states: Counter[str] = Counter()
    zip3: Counter[str] = Counter()
    cities: Counter[str] = Counter()
    in_district = unknown = 0
    ids = sorted(set(constituent_ids))
    for first in range(0, len(ids), 2000):
        rows = session.execute(select(Constituent.state, Constituent.zip5, Constituent.city,
                                      Constituent.district_status)
                               .where(Constituent.id.in_(ids[first:first + 2000])))
        for state, zip5, city, district in rows:
            if not state and not zip5:
                unknown += 1
            if state:
                states[state.upper()] += 1
            if zip5:
                zip3[zip5[:3]] += 1
            if city:
                cities[f"{city.strip().title()}, {(state or '').upper()}".rstrip(", ")] += 1
            in_district += getattr(district, "value", district) == "in_district"
    shown = zip3.most_common(ZIP3_ROWS)
    return Geography(len(ids), states.most_common(), shown, cities.most_common(50), in_district, unknown,
                     zip3_other=sum(zip3.values()) - sum(n for _k, n in shown))


@dataclass(frozen=True)
class Packet:
    eml: bytes
    pdf: bytes
    filename: str  # a stem for the files: "advisory-opinion-<letter>-v<version>"


_PAGE = """<!doctype html><html><head><meta charset="utf-8"><style>
@page { size: letter; margin: 2cm; }
body { font-family: serif; font-size: 11pt; }
h1 { font-size: 16pt; } h2 { font-size: 13pt; margin-top: 1.2em; }
table { border-collapse: collapse; } td, th { border: 1px solid #999; padding: 2px 8px; text-align: left; }
td.n { text-align: right; } pre { white-space: pre-wrap; font-family: serif; border: 1px solid #999; padding: 8px; }
</style></head><body>
<h1>Request for an advisory opinion: {{ title }}</h1>
<p>{{ office }} — prepared {{ today }}. Letter “{{ title }}”, version {{ version }}.</p>
<h2>Counts</h2>
<table>
<tr><th>Pieces in this mailing (people who did not write to the office)</th><td class="n">{{ "{:,}".format(v.pieces) }}</td></tr>
<tr><th>Of these by email / by post</th><td class="n">{{ "{:,}".format(email) }} / {{ "{:,}".format(post) }}</td></tr>
<tr><th>Pieces of this letter family already made, legislative year {{ year }}</th><td class="n">{{ "{:,}".format(v.earlier) }}</td></tr>
<tr><th>Total in the legislative year with this mailing</th><td class="n">{{ "{:,}".format(v.total) }}</td></tr>
<tr><th>Allowed without approval</th><td class="n">{{ "{:,}".format(v.threshold) }}</td></tr>
</table>
{% if v.family|length > 1 %}<p>Counted together as substantially identical (90% or more the same text):
{% for id, t, n in v.family %}“{{ t }}” ({{ "{:,}".format(n) }}){{ ", " if not loop.last }}{% endfor %}.</p>{% endif %}
{% if v.approval %}<p>Already approved: advisory opinion {{ v.approval.opinion_number }} of {{ v.approval.opinion_date.isoformat() }}.</p>{% endif %}
<h2>Where the recipients live</h2>
<p>{{ "{:,}".format(g.people) }} people; {{ "{:,}".format(g.in_district) }} known to live in the district;
{{ "{:,}".format(g.unknown) }} with no state or ZIP code on record.</p>
<table><tr><th>State</th><th>People</th></tr>{% for k, n in g.states %}<tr><td>{{ k }}</td><td class="n">{{ "{:,}".format(n) }}</td></tr>{% endfor %}</table>
<h2>By ZIP code area (first three digits)</h2>
<table><tr><th>ZIP3</th><th>People</th></tr>{% for k, n in g.zip3 %}<tr><td>{{ k }}</td><td class="n">{{ "{:,}".format(n) }}</td></tr>{% endfor %}
{% if g.zip3_other %}<tr><td>Other ZIP areas</td><td class="n">{{ "{:,}".format(g.zip3_other) }}</td></tr>{% endif %}</table>
<h2>By city (the 50 largest)</h2>
<table><tr><th>City</th><th>People</th></tr>{% for k, n in g.cities %}<tr><td>{{ k }}</td><td class="n">{{ "{:,}".format(n) }}</td></tr>{% endfor %}</table>
<h2>The letter as sent to a sample recipient</h2>
<p>Subject: {{ subject }}</p>
<pre>{{ body }}</pre>
<p>The exact email, with its headers and unsubscribe link, is the file message.eml beside this one.</p>
</body></html>"""  # noqa: E501  # an HTML page: its table rows are clearer on one line each


def _sample_email(session: Session, version: LetterVersion, person: Constituent, settings) -> tuple[bytes, str, str]:
    """The email this letter makes for ``person``, built by the send path itself (not stored anywhere)."""
    from drafting.apply import budget_of, office_of
    from drafting.headers import header_text
    from drafting.render import context, render
    from drafting.send import Outgoing, build_email

    # The follow-up record a run would answer (constituents.segments.follow_up_messages), not stored.
    sample = Message(direction=Direction.OUTBOUND, from_address=person.primary_email,
                     subject=f"Follow-up: {version.letter.title}", body_text="", constituent_id=person.id,
                     received_at=datetime.now(UTC))
    values = context(sample, person, office_of(settings))
    subject = header_text(render(version.subject, values, budget_of(settings)))[:500] or "Your letter"
    body = render(version.body, values, budget_of(settings))
    domain = settings.mail_domain
    letter = Outgoing(person.primary_email or f"sample@{domain}", subject, body,
                      f"<mailroom.sample.{uuid.uuid4().hex}@{domain}>", None, 0, True)
    return bytes(build_email(letter, settings).as_bytes()), subject, body


def build_packet(session: Session, version_id: int, constituent_ids: Sequence[int], *, pieces: int, settings,
                 rules: franking.Rules, today: date) -> Packet:
    """The packet for sending ``version_id`` to these constituents as an unsolicited mailing of ``pieces``
    (counted by the caller with ``franking``'s one count, as the dry run shows it)."""
    version = session.get(LetterVersion, version_id)
    if version is None:
        raise NotFound(f"no letter version {version_id}")
    ids = sorted(set(constituent_ids))
    if not ids:
        raise ValidationFailed("nobody would get this letter: there is nothing to ask approval for")
    verdict = franking.check(session, letter_id=version.letter_id, version_id=version.id, pieces=pieces,
                             rules=rules, today=today)
    first = session.scalar(select(Constituent).options(selectinload(Constituent.emails))
                           .where(Constituent.id == ids[0]))
    if first is None:
        raise NotFound(f"no constituent {ids[0]}")
    eml, subject, body = _sample_email(session, version, first, settings)
    with_email = 0
    for start in range(0, len(ids), 2000):
        with_email += len(list(session.scalars(select(Constituent.id).where(
            Constituent.id.in_(ids[start:start + 2000]), Constituent.emails.any()))))
    year = verdict.year or franking.legislative_year(today)
    html = _ENV.from_string(_PAGE).render(
        title=version.letter.title, version=version.number, office=settings.office_name, today=today.isoformat(),
        v=verdict, g=geography(session, ids), email=min(with_email, verdict.pieces),
        post=max(verdict.pieces - with_email, 0), year=f"{year[0].isoformat()} – {year[1].isoformat()}",
        subject=subject, body=body)
    from drafting.printing import html_to_pdf

    return Packet(eml, html_to_pdf(html), f"advisory-opinion-letter{version.letter_id}-v{version.number}")


def run_recipients(session: Session, run_id: int) -> tuple[int, list[int], int]:
    """(version id, the constituents of its follow-up messages, its unsolicited pieces) of an apply run,
    for ``mailroom mail packet``: the letters it made when it has run, else what it would make."""
    run = session.get(ApplyRun, run_id)
    if run is None:
        raise NotFound(f"no run {run_id}")
    ids = list(run.message_ids or [])
    people: set[int] = set()
    for first in range(0, len(ids), 2000):
        people.update(c for c in session.scalars(select(Message.constituent_id).where(
            Message.id.in_(ids[first:first + 2000]), Message.direction == Direction.OUTBOUND)) if c is not None)
    made = session.scalar(select(func.count(func.distinct(Response.constituent_id))).join(
        Message, Message.id == Response.message_id).where(Response.run_id == run.id,
                                                          Message.direction == Direction.OUTBOUND)) or 0
    pieces = made or franking.unsolicited_pieces(session, ids, letter_id=_letter_of(session, run.version_id))
    return run.version_id, sorted(people), pieces


def _letter_of(session: Session, version_id: int) -> int | None:
    return session.scalar(select(LetterVersion.letter_id).where(LetterVersion.id == version_id))
