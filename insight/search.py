"""One search box across messages, constituents, cases and letters.

Messages use the database's own full-text index behind one interface: SQLite FTS5 (embedded mode)
or a PostgreSQL tsvector column with a GIN index (scaled mode), both kept current by the statement
that writes the message (triggers / a generated column; migration 0010). People, cases and letters
are small tables searched with plain indexed conditions.

The query language: bare words (all must appear, stemmed), "quoted phrases", and field filters
``from:`` (sender name or address), ``topic:`` (topic name), ``status:``, ``batch:`` (number) and
``zip:``, ``after:`` and ``before:`` (dates). Nothing a person types is passed to SQL or to the
FTS parser as syntax: words are reduced to letters and digits and quoted, so a stray quote, ``*``,
``NEAR`` or ``;`` finds text or nothing, never an error.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    cast,
    column,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
)
from sqlalchemy.orm import Session, joinedload

from correspondence.ids import parse_id
from correspondence.models import (
    Case,
    CaseStatus,
    Constituent,
    ConstituentEmail,
    Direction,
    FormLetter,
    Message,
    MessageStatus,
    Topic,
)

CANDIDATES = 2000  # rank the most recent this many matches (a common word can match most of the mailbox)
PAGE_SIZE = 50  # messages per page of results; pages go on to the end of the ranked matches
# Matches are first looked for among the newest messages, widening only when too few turn up: a
# common word is answered from the newest 100,000 letters, a rare one from the whole mailbox.
WINDOWS = (100_000, 1_000_000, None)
ENOUGH = 200
FIELDS = ("from", "topic", "status", "batch", "zip", "after", "before")
_TOKEN = re.compile(r'(\w+):"([^"]*)"?|(\w+):(\S+)|"([^"]*)"?|(\S+)')
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Markers:
    """Where the database marks a matched word in a snippet, chosen afresh for every search.

    snippet()/ts_headline() put these around matches, and highlight() turns exactly these into marked
    spans. They carry 128 random bits, so text in a message cannot contain them and so cannot forge a
    highlight; the page escapes every span's text, so nothing in a message becomes markup.
    """

    start: str
    stop: str

    @classmethod
    def new(cls) -> Markers:
        token = secrets.token_hex(16)
        return cls(f"mrk{token}s", f"mrk{token}e")


@dataclass
class Query:
    words: list[str] = field(default_factory=list)
    phrases: list[list[str]] = field(default_factory=list)
    filters: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def has_text(self) -> bool:
        return bool(self.words or self.phrases)

    @property
    def empty(self) -> bool:
        return not self.has_text and not self.filters


def parse(raw: str) -> Query:
    query = Query()
    for match in _TOKEN.finditer((raw or "")[:500]):
        key = (match.group(1) or match.group(3) or "").lower()
        value = match.group(2) if match.group(1) else match.group(4)
        if key:
            if key in FIELDS and value and value.strip():
                query.filters[key] = value.strip()
                continue
            if key not in FIELDS:
                # "note:" is not a filter: search for the words instead.
                query.words += [w.lower() for w in _WORD.findall(f"{key} {value or ''}")]
                continue
            continue
        if match.group(5) is not None:
            words = [w.lower() for w in _WORD.findall(match.group(5))]
            if len(words) > 1:
                query.phrases.append(words)
            elif words:
                query.words.append(words[0])
            continue
        query.words += [w.lower() for w in _WORD.findall(match.group(6) or "")]
    query.words = list(dict.fromkeys(query.words))[:20]
    query.phrases = query.phrases[:5]
    if "batch" in query.filters and parse_id(query.filters["batch"]) is None:
        query.notes.append(f"batch: needs a batch number, not {query.filters.pop('batch')!r}")
    for key in ("after", "before"):
        if key in query.filters:
            try:
                date.fromisoformat(query.filters[key])
            except ValueError:
                query.notes.append(f"{key}: needs a date like 2026-03-01, not {query.filters.pop(key)!r}")
    if "status" in query.filters:
        value = query.filters["status"].lower().replace(" ", "_")
        if value not in {s.value for s in MessageStatus} | {s.value for s in CaseStatus} | {"open"}:
            query.notes.append(f"status: {query.filters.pop('status')!r} is not a status")
        else:
            query.filters["status"] = value
    return query


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Span:
    """A piece of a snippet: plain text, marked when it is a matched word. The page escapes the text."""

    text: str
    marked: bool = False


def highlight(snippet: str | None, markers: Markers | None = None) -> tuple[Span, ...]:
    """A snippet cut into spans, the matched words marked (only this search's own markers, never text that
    looks like them); control characters dropped. Plain data: the web layer escapes and draws it."""
    text = _CONTROL.sub("", snippet or "")
    if markers is None:
        return (Span(text),) if text else ()
    spans: list[Span] = []
    for i, piece in enumerate(text.split(markers.start)):
        inner, sep, rest = piece.partition(markers.stop)
        if i == 0 or not sep:  # text before the first mark, or a start cut off without its stop
            before = piece.replace(markers.stop, "")
            spans += [Span(before)] if before else []
            continue
        after = rest.replace(markers.stop, "")
        spans += [Span(inner, marked=True)] + ([Span(after)] if after else [])
    return tuple(spans)


@dataclass
class MessageHit:
    message: Message
    snippet: tuple[Span, ...]
    rank: float


@dataclass
class Results:
    query: Query
    messages: list[MessageHit] = field(default_factory=list)
    more_messages: bool = False  # a next page, or older matches beyond the ranked ones
    page: int = 1
    next_page: bool = False
    capped: bool = False  # older matches exist beyond the CANDIDATES newest, which are the ones ranked

    @property
    def first_number(self) -> int:
        """The position of the first message on this page (1 on the first page)."""
        return (self.page - 1) * PAGE_SIZE + 1
    constituents: list[Constituent] = field(default_factory=list)
    cases: list[Case] = field(default_factory=list)
    letters: list[FormLetter] = field(default_factory=list)


Condition = ColumnElement[bool]
# A page of ranked hits: (message id, rank, snippet with this search's markers), whether a next page exists,
# and whether older matches lie beyond the ranked candidates.
RankedPage = tuple[list[tuple[int, float, str | None]], bool, bool]


def _message_filters(session: Session, query: Query) -> list[Condition]:
    conditions: list[Condition] = [Message.direction == Direction.INBOUND]
    f = query.filters
    if "from" in f:
        pattern = "%" + f["from"].lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(or_(func.lower(Message.from_address).like(pattern, escape="\\"),
                              func.lower(Message.from_name).like(pattern, escape="\\")))
    if "topic" in f:
        ids = list(session.scalars(select(Topic.id).where(func.lower(Topic.name).contains(f["topic"].lower(),
                                                                                          autoescape=True))))
        conditions.append(Message.topic_id.in_(ids or [-1]))
    if "status" in f:
        if f["status"] == "open":
            from correspondence.models import OPEN_STATUSES

            conditions.append(Message.status.in_(OPEN_STATUSES))
        elif f["status"] in {s.value for s in MessageStatus}:
            conditions.append(Message.status == MessageStatus(f["status"]))
        else:
            conditions.append(literal(False))
    if "batch" in f:
        conditions.append(Message.batch_id == int(f["batch"]))
    if "after" in f:
        conditions.append(Message.received_at >= datetime.combine(date.fromisoformat(f["after"]), time.min, UTC))
    if "before" in f:
        conditions.append(Message.received_at < datetime.combine(date.fromisoformat(f["before"]), time.min, UTC))
    if "zip" in f:
        conditions.append(Message.constituent_id.in_(select(Constituent.id).where(
            Constituent.zip5 == f["zip"][:5])))
    return conditions


def _recent_matches(session: Session, base: Select[int]) -> tuple[list[int], bool]:
    """The newest matching ids (at most CANDIDATES) and whether older matches were left out."""
    newest = session.scalar(select(func.max(Message.id))) or 0
    for span in WINDOWS:
        bounded = span is not None and newest - span > 0
        query = base.where(Message.id > newest - span) if span is not None and bounded else base
        ids = list(session.scalars(query.order_by(Message.id.desc()).limit(CANDIDATES + 1)))
        if not bounded or len(ids) >= ENOUGH:
            return ids[:CANDIDATES], len(ids) > CANDIDATES or bounded
    return ids[:CANDIDATES], len(ids) > CANDIDATES  # pragma: no cover - the last window is unbounded


def _fts5_query(query: Query) -> str:
    parts = [f'"{w}"' for w in query.words] + ['"' + " ".join(p) + '"' for p in query.phrases]
    return " ".join(parts)


def page_of_messages(session: Session, query: Query, *, limit: int = PAGE_SIZE,
                     offset: int = 0) -> tuple[list[MessageHit], bool, bool]:
    """(hits, whether a next page exists, whether older matches lie beyond the ranked CANDIDATES).

    Filters alone list every match newest first, page after page. With words, the newest CANDIDATES
    matches are ranked and paged through; older ones are reached by narrowing (a date or more words).
    """
    conditions = _message_filters(session, query)
    if not query.has_text:
        rows = list(session.scalars(select(Message).where(*conditions)
                                    .order_by(Message.received_at.desc(), Message.id.desc())
                                    .offset(offset).limit(limit + 1).options(joinedload(Message.topic))))
        return ([MessageHit(m, highlight((m.body_text or "")[:200]), 0.0) for m in rows[:limit]],
                len(rows) > limit, False)
    markers = Markers.new()
    if session.get_bind().dialect.name == "postgresql":
        hits, has_next, capped = _postgres(session, query, conditions, limit, offset, markers)
    else:
        hits, has_next, capped = _sqlite(session, query, conditions, limit, offset, markers)
    by_id = {m.id: m for m in session.scalars(select(Message).where(Message.id.in_([h[0] for h in hits]))
                                              .options(joinedload(Message.topic)))}
    return ([MessageHit(by_id[i], highlight(snip, markers), rank) for i, rank, snip in hits if i in by_id],
            has_next, capped)


def _sqlite(session: Session, query: Query, conditions: list[Condition], limit: int, offset: int,
            markers: Markers) -> RankedPage:
    match = _fts5_query(query)
    fts = text("SELECT rowid FROM messages_fts WHERE messages_fts MATCH :q").columns(
        column("rowid", Integer)).bindparams(q=match)
    fts_ids = fts.subquery("fts")
    candidates, capped = _recent_matches(session, select(Message.id).join(fts_ids, fts_ids.c.rowid == Message.id)
                                         .where(*conditions))
    if not candidates:
        return [], False, False
    # Rank every match in the id range the candidates span (FTS5 seeks rowid ranges in its index),
    # keep the candidates, then cut snippets for the page only. bm25 weights: subject counts most,
    # then the sender, then the body.
    wanted = set(candidates)
    ranked = session.execute(text(
        "SELECT rowid, bm25(messages_fts, 8.0, 1.0, 3.0, 3.0) AS rank FROM messages_fts "
        "WHERE messages_fts MATCH :q AND rowid >= :lo AND rowid <= :hi ORDER BY rank LIMIT :n"),
        {"q": match, "lo": min(candidates), "hi": max(candidates), "n": 4 * CANDIDATES}).all()
    ordered = [(rowid, -float(rank)) for rowid, rank in ranked if rowid in wanted]
    top = ordered[offset:offset + limit]
    snippet = text("SELECT snippet(messages_fts, 1, :start, :stop, ' … ', 16) FROM messages_fts "
                   "WHERE messages_fts MATCH :q AND rowid = :id")
    rows = [(rowid, rank, session.scalar(snippet, {"q": match, "start": markers.start, "stop": markers.stop,
                                                       "id": rowid}))
            for rowid, rank in top]
    return rows, len(ordered) > offset + limit, capped


def _tsquery(query: Query) -> ColumnElement[Any]:
    parts: list[ColumnElement[Any]] = []
    if query.words:
        parts.append(func.plainto_tsquery("english", " ".join(query.words)))
    for phrase in query.phrases:
        parts.append(func.phraseto_tsquery("english", " ".join(phrase)))
    combined = parts[0]
    for part in parts[1:]:
        combined = combined.op("&&")(part)
    return combined


def _postgres(session: Session, query: Query, conditions: list[Condition], limit: int, offset: int,
              markers: Markers) -> RankedPage:
    tsq = _tsquery(query)
    vector: ColumnElement[Any] = literal_column("messages.search_vector")
    matches = vector.op("@@")(tsq)
    candidates, capped = _recent_matches(session, select(Message.id).where(matches, *conditions))
    if not candidates:
        return [], False, False
    rank = func.ts_rank_cd(vector, tsq).label("rank")
    top = (select(Message.id, rank, Message.body_text).where(Message.id.in_(candidates))
           .order_by(text("rank DESC"), Message.id.desc()).offset(offset).limit(limit + 1).subquery())
    options = (f"StartSel={markers.start}, StopSel={markers.stop}, MaxWords=30, MinWords=12, MaxFragments=2, "
               "FragmentDelimiter=\" … \"")
    rows = session.execute(select(top.c.id, top.c.rank, func.ts_headline(
        "english", func.left(top.c.body_text, 20000), tsq, options)).order_by(top.c.rank.desc(), top.c.id.desc())).all()
    return [(r[0], float(r[1]), r[2]) for r in rows[:limit]], len(rows) > limit, capped


def _name_forms(word: str) -> list[str]:
    """How a name is likely stored: as typed, Capitalised, UPPER (the last-name index is exact)."""
    return list(dict.fromkeys((word, word.lower(), word.capitalize(), word.upper(), word.title())))


def search_constituents(session: Session, query: Query, limit: int = 20) -> list[Constituent]:
    """People by last name, ZIP or email address (indexed lookups), narrowed by every other word."""
    words = query.words + [w for p in query.phrases for w in p]
    zip_code = query.filters.get("zip", "")[:5]
    email = query.filters.get("from", "").lower() if "@" in query.filters.get("from", "") else ""
    if not (words or zip_code or email):
        return []
    names = [form for w in words[:6] if not w.isdigit() for form in _name_forms(w)]
    found = []
    if names:
        found.append(Constituent.last_name.in_(names))
    zips = [w for w in words if len(w) == 5 and w.isdigit()] + ([zip_code] if zip_code else [])
    if zips:
        found.append(Constituent.zip5.in_(zips))
    if email:
        found.append(Constituent.id.in_(select(ConstituentEmail.constituent_id)
                                        .where(ConstituentEmail.address == email)))
    conditions = [Constituent.merged_into_id.is_(None), or_(*found)]
    if zip_code:
        conditions.append(Constituent.zip5 == zip_code)
    for w in words[:6]:
        conditions.append(or_(func.lower(Constituent.last_name) == w, func.lower(Constituent.first_name) == w,
                              Constituent.zip5 == w[:5], func.lower(Constituent.city) == w))
    return list(session.scalars(select(Constituent).where(*conditions)
                                .order_by(Constituent.last_name, Constituent.id).limit(limit)))


def search_cases(session: Session, query: Query, limit: int = 20) -> list[Case]:
    words = query.words + [" ".join(p) for p in query.phrases]
    if not words:
        return []
    conditions = [or_(func.lower(Case.subject).contains(w, autoescape=True),
                      func.lower(Case.agency).contains(w, autoescape=True),
                      Case.constituent_id.in_(select(Constituent.id).where(
                          Constituent.last_name.in_(_name_forms(w)))))
                  for w in words[:6]]
    if query.filters.get("status") in {s.value for s in CaseStatus}:
        conditions.append(Case.status == CaseStatus(query.filters["status"]))
    if "zip" in query.filters:
        conditions.append(Case.constituent_id.in_(select(Constituent.id).where(
            Constituent.zip5 == query.filters["zip"][:5])))
    return list(session.scalars(select(Case).where(*conditions).order_by(Case.opened_at.desc()).limit(limit)
                                .options(joinedload(Case.constituent), joinedload(Case.category))))


def search_letters(session: Session, query: Query, limit: int = 10) -> list[FormLetter]:
    words = query.words + [" ".join(p) for p in query.phrases]
    if not words or query.filters:
        return []
    conditions = [or_(func.lower(FormLetter.title).contains(w, autoescape=True),
                      func.lower(cast(FormLetter.tags, String)).contains(w, autoescape=True)) for w in words[:6]]
    return list(session.scalars(select(FormLetter).where(FormLetter.one_off_message_id.is_(None), *conditions)
                                .order_by(FormLetter.title).limit(limit)))


MAX_PAGE = 10_000  # a page number beyond any mailbox; bigger ones are read as this (no huge OFFSET)


def search(session: Session, raw: str, *, page: int = 1) -> Results:
    """Page `page` of the messages (PAGE_SIZE each) and the first matching people, cases and letters."""
    query = parse(raw)
    page = min(max(page, 1), MAX_PAGE)
    results = Results(query, page=page)
    if query.empty:
        return results
    results.messages, results.next_page, results.capped = page_of_messages(
        session, query, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    results.more_messages = results.next_page or results.capped
    results.constituents = search_constituents(session, query)
    results.cases = search_cases(session, query)
    results.letters = search_letters(session, query)
    return results
