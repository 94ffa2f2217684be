"""Batches in the database: online join, offline clustering of the unbatched pool, staff decisions, undo.

Rules that hold here:
- Clustering only ever places messages that have no batch and that no person has placed
  (``batch_pinned``); it never re-forms, merges or empties an existing batch. People decide those.
- Every change a person makes is one audit event whose ``before`` holds what undo needs; undo is
  itself an audited event, and an event is undone at most once.
- A batch's template shingles are stored (``batch_shingles``), so joining a new letter is one
  indexed query whatever the number of messages stored.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from batching.cluster import NOT_A_BATCH, ClusterSettings, cluster_texts, overlap_score, shingles, signed
from batching.evidence import explain
from batching.normalise import normalise, sentences
from batching.source import Member, detect_source
from batching.templates import (
    Template,
    addition_kinds,
    boilerplate,
    build_template,
    clean_subject,
    personal_additions,
    similarity,
    template_stance,
    title_phrases,
    worth_a_look,
)
from correspondence.errors import DomainError, InvalidTransition, NotFound, ValidationFailed
from correspondence.models import (
    OPEN_STATUSES,
    AuditEvent,
    Batch,
    BatchProposal,
    BatchShingle,
    BatchStatus,
    Direction,
    Message,
    MessageStatus,
    ProposalStatus,
    Staffer,
    Stance,
    Topic,
    utcnow,
)
from correspondence.services.audit import record
from correspondence.services.messages import assign_message, set_stance, set_topic, unassign_message

log = logging.getLogger(__name__)

CFG = ClusterSettings()
# Shingles of one letter looked up when joining (a 20,000-character letter has ~3,000).
MAX_LOOKUP = 4000
LIVE = (BatchStatus.OPEN, BatchStatus.LETTER_PENDING, BatchStatus.ANSWERED, BatchStatus.NOT_CAMPAIGN)
# Open batches: titles are unique among these.
TITLED = (BatchStatus.OPEN, BatchStatus.LETTER_PENDING, BatchStatus.ANSWERED)
# A letter scoring at least this (and below the join threshold) against a batch is a near miss: listed on
# the batch page as "possibly part of this campaign" when worth_proposing agrees, for a person to decide.
PROPOSE_OVERLAP = 0.3
# At most this many open proposals per batch: the closest are listed, a closer one takes the farthest's place.
PROPOSE_CAP = 20


def template_of(batch: Batch) -> Template:
    return _template(batch.template_text)


@lru_cache(maxsize=2048)
def _template(text: str) -> Template:
    """Templates change rarely and are read on every join: parsed once per process."""
    keys = tuple(k for k in (normalise(s) for s in sentences(text)) if k)
    return Template(text, keys, shingles(normalise(text), CFG.shingle_words))


def get_batch(session: Session, batch_id: int) -> Batch:
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise NotFound(f"no batch {batch_id}")
    return batch


def _live(session: Session, batch: Batch) -> Batch:
    """Follow merges to the batch that holds the campaign now."""
    seen = set()
    while batch.status == BatchStatus.MERGED and batch.merged_into_id and batch.id not in seen:
        seen.add(batch.id)
        batch = session.get(Batch, batch.merged_into_id) or batch
    return batch


# --- online join ------------------------------------------------------------------------------

# Built once: composing the statement per letter cost more than running it.
_SHARED = func.count().label("shared")
_TOP = (select(BatchShingle.batch_id, _SHARED).where(BatchShingle.shingle.in_(bindparam("keys", expanding=True)))
        .group_by(BatchShingle.batch_id).order_by(_SHARED.desc()).limit(5).subquery())
_FIND = select(_TOP.c.batch_id, _TOP.c.shared, Batch.template_shingles).join(Batch, Batch.id == _TOP.c.batch_id)


def scored_batches(session: Session, text: str, cfg: ClusterSettings = CFG) -> list[tuple[int, float]]:
    """The (up to five) batches sharing most phrases with the letter, with their scores, best first."""
    s = shingles(normalise(text), cfg.shingle_words)
    if len(s) < cfg.min_shingles:
        return []
    keys = [signed(h) for h in list(s)[:MAX_LOOKUP]]
    rows = session.execute(_FIND, {"keys": keys}).all()
    scored = [(batch_id, overlap_score(count, len(s), size, cfg)) for batch_id, count, size in rows]
    return sorted(scored, key=lambda item: (-item[1], item[0]))


_REJECTED = (select(BatchProposal.batch_id)
             .where(BatchProposal.message_id == bindparam("message_id"),
                    BatchProposal.status == ProposalStatus.REJECTED))


def rejected_batches(session: Session, message_id: int | None) -> set[int]:
    """The batches a person said this letter is not part of."""
    if message_id is None:
        return set()
    return set(session.scalars(_REJECTED, {"message_id": message_id}))


def find_batch(session: Session, text: str, cfg: ClusterSettings = CFG, *,
               scored: list[tuple[int, float]] | None = None,
               exclude: set[int] | frozenset[int] = frozenset()) -> tuple[Batch, float] | None:
    """The batch whose template this letter copies, with its score; None if no template is close."""
    scored = scored_batches(session, text, cfg) if scored is None else scored
    best_id, best_score = None, 0.0
    for batch_id, score in scored:
        if score >= cfg.join_overlap and score > best_score and batch_id not in exclude:
            best_id, best_score = batch_id, score
    batch = session.get(Batch, best_id) if best_id is not None else None
    best = (batch, best_score) if batch is not None else None
    if best is None:
        return None
    live = _live(session, best[0])
    return (live, best[1]) if live.status in LIVE else None


def join_message(session: Session, message: Message, cfg: ClusterSettings = CFG) -> Batch | None:
    """The intake `batch` stage: a new letter joins the batch whose template it copies.

    The member inherits the batch's topic and stance when it has none, and the batch's assignee
    when nobody has it yet.
    """
    if message.batch_id is not None or message.batch_pinned or message.direction != Direction.INBOUND:
        return None
    scored = scored_batches(session, message.body_text or "", cfg)
    if not scored or scored[0][1] < PROPOSE_OVERLAP:
        return None
    # A letter a person said is not part of a batch never joins it (only a letter processed again can
    # carry such a "no"; looked up only when the letter would join). Proposing skips decided pairs itself.
    rejected = rejected_batches(session, message.id) if scored[0][1] >= cfg.join_overlap else set()
    found = find_batch(session, message.body_text or "", cfg, scored=scored, exclude=rejected)
    if found is None:
        propose(session, message, [(b, score) for b, score in scored if b not in rejected], cfg)
        return None
    batch, score = found
    _place(session, message, batch, template_of(batch), score)
    session.connection().execute(update(Batch.__table__).where(Batch.__table__.c.id == batch.id)
                                 .values(member_count=Batch.__table__.c.member_count + 1))
    if message.topic_id is None and batch.topic_id is not None:
        message.topic_id, message.topic_source = batch.topic_id, "batch"
    if message.stance is None and batch.stance is not None:
        message.stance = batch.stance
    if batch.assignee_id is not None and message.assignee_id is None and message.status == MessageStatus.NEW:
        assignee = session.get(Staffer, batch.assignee_id)
        if assignee is not None and assignee.active:
            if message.id is None:
                session.flush()
            # Through the audited, checked transition like every other assignment (the system is the actor).
            assign_message(session, message.id, assignee.id, actor_id=None)
    return batch


def _place(session: Session, message: Message, batch: Batch, template: Template, score: float | None = None,
           *, pinned: bool | None = None) -> None:
    message.batch_id = batch.id
    message.batch_similarity = round(score if score is not None else similarity(message.body_text or "", template),
                                     4)
    added = personal_additions(message.body_text or "", template)
    message.batch_additions = added or None
    message.batch_addition_kinds = addition_kinds(added)
    if pinned is not None:
        message.batch_pinned = pinned


# --- offline clustering -------------------------------------------------------------------------

@dataclass
class ClusterRun:
    pool: int = 0
    new_batches: int = 0
    joined_existing: int = 0
    batched: int = 0
    proposed: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {"pool": self.pool, "new_batches": self.new_batches, "joined_existing": self.joined_existing,
                "batched": self.batched, "proposed": self.proposed, "seconds": round(self.seconds, 2)}


def _pool_query(since: datetime | None = None):  # type: ignore[no-untyped-def]
    query = (select(Message.id, Message.body_text)
             .where(Message.batch_id.is_(None), Message.batch_pinned.is_(False),
                    Message.direction == Direction.INBOUND, Message.processed_at.is_not(None),
                    Message.status.not_in([MessageStatus.QUARANTINED, MessageStatus.ARCHIVED]))
             .order_by(Message.id))
    return query.where(Message.received_at >= since) if since is not None else query


def recluster(session: Session, cfg: ClusterSettings = CFG, *, limit: int | None = None,
              read: Session | None = None, checkpoint: Callable[[], None] | None = None,
              since: datetime | None = None) -> ClusterRun:
    """Cluster the unbatched pool; clusters big enough become batches or join the batch they copy.

    With `since`, the pool is the unbatched letters received since then (the scheduled run's window).

    With `read`, everything that is worked out rather than written — the pool, the clustering, each group's
    template, the batch it copies, its title, each member's similarity and additions — is read and computed
    through that session, and `session` is used to write only: a job passes a session that takes no write
    lock, so SQLite's lock is held for the writing alone, not for the seconds of clustering and aligning.
    `checkpoint` (the job's commit) is called every ``WRITE_CHUNK`` letters written, so no one transaction
    holds the lock long (at 200,000 messages, 50 groups per commit held it 1.2 s a time: bench/load.py with
    --lock-log). A letter placed meanwhile (the online join, a person) is left where it is.
    """
    started = time.perf_counter()
    run = ClusterRun()
    reader = read or session
    query = _pool_query(since)
    rows = reader.execute(query.limit(limit) if limit else query).all()
    if read is not None:
        read.rollback()  # the read snapshot is not kept open while clustering
    run.pool = len(rows)
    if not rows:
        return run
    clustering = cluster_texts([text or "" for _id, text in rows], cfg)
    texts = {message_id: text or "" for message_id, text in rows}
    groups: dict[int, list[int]] = {}
    for (message_id, _text), label in zip(rows, clustering.labels, strict=True):
        if label != NOT_A_BATCH:
            groups.setdefault(label, []).append(message_id)
    plans = _plan_groups(reader, [groups[label] for label in sorted(groups)], texts, cfg)
    if read is not None:
        read.rollback()
    new_batches: list[Batch] = []
    written = 0
    for plan in plans:
        if checkpoint is not None and written >= WRITE_CHUNK:
            session.flush()
            checkpoint()
            written = 0
        placed = _write_plan(session, plan, cfg)
        if placed is None:
            continue
        batch, n = placed
        written += n + 1
        run.batched += n
        if plan.existing_id is None:
            new_batches.append(batch)
            run.new_batches += 1
        else:
            run.joined_existing += n
    session.flush()
    if new_batches:
        if checkpoint is not None:
            checkpoint()  # the batches are in; the near misses are found without the lock
        # Letters left in the pool that nearly match a batch made now were never compared with it.
        left = [(message_id, text) for (message_id, text), label in zip(rows, clustering.labels, strict=True)
                if label == NOT_A_BATCH]
        run.proposed = propose_pool(session, left, new_batches, cfg, read=read)
    run.seconds = time.perf_counter() - started
    log.info("recluster %s", run.as_dict())
    return run


# Letters (and batches) written per transaction by recluster when it is given a checkpoint.
WRITE_CHUNK = 100
# What a member of a batch carries, worked out before the write: similarity, additions, their kinds.
Placement = tuple[float, list[str] | None, str | None]


@dataclass
class _GroupPlan:
    """One group of the pool, worked out without the write lock."""

    ids: list[int]
    template: Template
    placements: dict[int, Placement]
    existing_id: int | None = None
    new: Batch | None = None  # a batch not in any session yet: the new batch's fields


def _placement(text: str, template: Template, score: float | None = None) -> Placement:
    added = personal_additions(text, template)
    return (round(score if score is not None else similarity(text, template), 4), added or None,
            addition_kinds(added))


def _plan_groups(reader: Session, groups: list[list[int]], texts: dict[int, str],
                 cfg: ClusterSettings) -> list[_GroupPlan]:
    plans: list[_GroupPlan] = []
    titles_here: set[str] = set()  # titles planned in this run are taken too
    for ids in groups:
        template = build_template([texts[i] for i in ids])
        existing = find_batch(reader, template.text, cfg) if template.text else None
        if existing is not None:
            live = template_of(existing[0])
            plans.append(_GroupPlan(ids, live, {i: _placement(texts[i], live) for i in ids},
                                    existing_id=existing[0].id))
            continue
        meta = _meta(reader, ids)
        members = [Member(texts[i], subject or "", organization, agent, campaign)
                   for i, subject, organization, agent, campaign, _stance, _topic in meta]
        source = detect_source(members)
        title = _title(reader, [subject or "" for _id, subject, *_rest in meta], template, also_taken=titles_here)
        titles_here.add(title.casefold())
        batch = Batch(title=title, template_text=template.text, status=BatchStatus.OPEN,
                      source=source.name and source.name[:300], source_kind=source.kind,
                      campaign_id=source.campaign_id and source.campaign_id[:200],
                      stance=_majority((row[5] for row in meta), len(ids)),
                      topic_id=_majority((row[6] for row in meta), len(ids)), member_count=len(ids))
        batch.suggested_stance = _suggested_stance(batch, template)
        plans.append(_GroupPlan(ids, template, {i: _placement(texts[i], template) for i in ids}, new=batch))
    return plans


def _meta(reader: Session, ids: list[int]) -> list[tuple]:  # type: ignore[type-arg]
    return [tuple(row) for row in reader.execute(
        select(Message.id, Message.subject, Message.organization, Message.delivery_agent, Message.campaign_id,
               Message.stance, Message.topic_id).where(Message.id.in_(ids)).order_by(Message.id))]


def _write_plan(session: Session, plan: _GroupPlan, cfg: ClusterSettings) -> tuple[Batch, int] | None:
    """Write one planned group: the letters still outside every batch join it. None when it is left."""
    members = list(session.scalars(select(Message).where(Message.id.in_(plan.ids), Message.batch_id.is_(None),
                                                         Message.batch_pinned.is_(False))))
    if len(members) < len(plan.ids) and len(members) < min(len(plan.ids), cfg.min_batch_size):
        return None  # most of the group was placed meanwhile: what is left waits for the next pass
    if plan.existing_id is not None:
        found = session.get(Batch, plan.existing_id)
        if found is None or _live(session, found).status not in LIVE:
            return None  # merged or closed meanwhile: the next pass finds where these letters go now
        batch = _live(session, found)
        # A letter a person said is not part of this batch stays out of it.
        refused = set(session.scalars(select(BatchProposal.message_id).where(
            BatchProposal.batch_id == batch.id, BatchProposal.status == ProposalStatus.REJECTED,
            BatchProposal.message_id.in_(plan.ids))))
        members = [m for m in members if m.id not in refused]
        for m in members:
            _place_planned(m, batch, plan.placements[m.id])
        batch.member_count = _count(session, batch.id)
        return batch, len(members)
    assert plan.new is not None  # noqa: S101 - a plan is for an existing batch or a new one
    batch = plan.new
    if session.scalar(select(Batch.id).where(Batch.status.in_(TITLED),
                                             func.lower(Batch.title) == batch.title.casefold()).limit(1)):
        batch.title = _title(session, [m.subject or "" for m in members], plan.template)  # taken meanwhile
    batch.member_count = len(members)
    session.add(batch)
    session.flush()
    _store_shingles(session, batch, plan.template)
    for m in members:
        _place_planned(m, batch, plan.placements[m.id])
        # Members inherit what the campaign says when they say nothing themselves (CWC ProOrCon).
        if m.stance is None and batch.stance is not None:
            m.stance = batch.stance
        if m.topic_id is None and batch.topic_id is not None:
            m.topic_id, m.topic_source = batch.topic_id, "batch"
    record(session, actor_id=None, action="batch.create", object_type="batch", object_id=batch.id,
           after={"by": "clustering", "size": len(members), "source": batch.source, "title": batch.title})
    return batch, len(members)


def _place_planned(message: Message, batch: Batch, placement: Placement) -> None:
    message.batch_id = batch.id
    message.batch_similarity, message.batch_additions, message.batch_addition_kinds = placement


def _count(session: Session, batch_id: int) -> int:
    session.flush()
    return session.scalar(select(func.count(Message.id)).where(Message.batch_id == batch_id)) or 0


def _title(session: Session, subjects_of_members: Sequence[str], template: Template, *,
           also_taken: set[str] | frozenset[str] = frozenset()) -> str:
    """The campaign's own subject when most copies share a specific one, else the template's most
    distinctive phrase; never a generic word ("Question"), never the title of another open batch."""
    taken_rows = session.execute(select(Batch.title, Batch.template_text).where(Batch.status.in_(TITLED))).all()
    taken = {(title or "").casefold() for title, _text in taken_rows} | set(also_taken)
    subjects = Counter(c for c in (clean_subject(s) for s in subjects_of_members) if c)
    candidates = []
    if subjects:
        subject, count = subjects.most_common(1)[0]
        if count >= 0.2 * len(subjects_of_members):
            candidates.append(subject[:300])
    candidates += title_phrases(template.text, [text or "" for _title, text in taken_rows[:500]])
    for title in candidates:
        if title.casefold() not in taken:
            return title[:300]
    # No phrase of its own (a template of courtesies only): say so rather than title it "Thank you".
    shared = template.text[:80].rsplit(" ", 1)[0] if len(template.text) > 80 else template.text
    base = candidates[0] if candidates else f"Letters sharing only “{shared}”" if shared else "Untitled batch"
    if base.casefold() not in taken:
        return base[:300]
    for n in range(2, 1000):  # every phrase already names an open batch: number this one
        title = f"{base[:290]} ({n})"
        if title.casefold() not in taken:
            return title
    return base[:300]


def _majority(values: Iterable[object], total: int) -> object | None:
    counts = Counter(v for v in values if v is not None)
    if not counts:
        return None
    value, n = counts.most_common(1)[0]
    return value if n >= 0.5 * total else None


def _store_shingles(session: Session, batch: Batch, template: Template) -> None:
    session.query(BatchShingle).filter(BatchShingle.batch_id == batch.id).delete()
    session.add_all(BatchShingle(batch_id=batch.id, shingle=signed(h)) for h in template.shingles)
    batch.template_shingles = len(template.shingles)


def _new_batch(session: Session, members: list[Message], template: Template, *, actor_id: int | None,
               how: str, pinned: bool = False) -> Batch:
    source = detect_source([Member(m.body_text or "", m.subject or "", m.organization, m.delivery_agent,
                                   m.campaign_id) for m in members])
    batch = Batch(title=_title(session, [m.subject or "" for m in members], template), template_text=template.text,
                  status=BatchStatus.OPEN,
                  source=source.name and source.name[:300], source_kind=source.kind,
                  campaign_id=source.campaign_id and source.campaign_id[:200],
                  stance=_majority((m.stance for m in members), len(members)),
                  topic_id=_majority((m.topic_id for m in members), len(members)), member_count=len(members))
    batch.suggested_stance = _suggested_stance(batch, template)
    session.add(batch)
    session.flush()
    _store_shingles(session, batch, template)
    for m in members:
        _place(session, m, batch, template, pinned=pinned or None)
        # Members inherit what the campaign says when they say nothing themselves (CWC ProOrCon).
        if m.stance is None and batch.stance is not None:
            m.stance = batch.stance
        if m.topic_id is None and batch.topic_id is not None:
            m.topic_id, m.topic_source = batch.topic_id, "batch"
    record(session, actor_id=actor_id, action="batch.create", object_type="batch", object_id=batch.id,
           after={"by": how, "size": len(members), "source": batch.source, "title": batch.title})
    return batch


def refresh_template(session: Session, batch: Batch) -> None:
    """Rebuild the consensus, the join index and every member's similarity and additions."""
    members = list(session.scalars(select(Message).where(Message.batch_id == batch.id)))
    if not members:
        batch.member_count = 0
        return
    template = build_template([m.body_text or "" for m in members])
    batch.template_text = template.text
    batch.suggested_stance = _suggested_stance(batch, template)
    _store_shingles(session, batch, template)
    for m in members:
        _place(session, m, batch, template)
    batch.member_count = len(members)


def _suggested_stance(batch: Batch, template: Template) -> Stance | None:
    """What the template plainly says (oppose / support), offered when the batch has no stance yet."""
    if batch.stance is not None:
        return None
    found = template_stance(template.text)
    return Stance(found) if found else None


# --- letters that nearly match: for a person to decide ---------------------------------------------------

def _near_miss(scored: Iterable[tuple[int, float]], cfg: ClusterSettings) -> tuple[int, float] | None:
    for batch_id, score in scored:
        if PROPOSE_OVERLAP <= score < cfg.join_overlap:
            return batch_id, score
    return None


def common_sentences(session: Session) -> frozenset[str]:
    """Sentences several open batches' templates share (stock openings and closings): holding them is
    no reason to propose a letter (batching.templates.boilerplate)."""
    return boilerplate(list(session.scalars(select(Batch.template_text).where(Batch.status.in_(TITLED)))))


def worth_proposing(text: str, batch: Batch, common: frozenset[str]) -> tuple[float, str] | None:
    """(score, stage) when a person should decide whether the letter belongs to the batch, else None.

    The letter must be in the uncertain band (or above it by sentence alignment, which the word 3-gram
    join missed) by batching.evidence.explain, and its aligned sentences must hold at least
    ``UNCERTAIN_FROM`` of the template's own words: a letter sharing only a stock opening, a closing
    or a thank-you with a template is not listed, nor one close in meaning only (same topic, own words)
    unless it is mostly the template (batching.templates.worth_a_look).
    """
    ev = explain(text, batch.template_text or "", key=batch.id)
    return (ev.score, ev.stage) if worth_a_look(text, ev, template_of(batch), common) else None


def _open_scores(session: Session, batch_id: int) -> list[tuple[float, int]]:
    """The batch's listed proposals (open, letter still outside every batch) as (score, message id), lowest first."""
    return sorted((score, message_id) for message_id, score in session.execute(
        select(BatchProposal.message_id, BatchProposal.score).join(Message, Message.id == BatchProposal.message_id)
        .where(BatchProposal.batch_id == batch_id, BatchProposal.status == ProposalStatus.OPEN,
               Message.batch_id.is_(None))))


def _list(session: Session, batch_id: int, message_id: int, score: float, stage: str,
          listed: list[tuple[float, int]]) -> BatchProposal | None:
    """Add the proposal unless the batch already lists ``PROPOSE_CAP`` closer ones; past the cap the
    farthest open proposal (never decided) makes room. ``listed`` (from _open_scores) is kept up to date."""
    if len(listed) >= PROPOSE_CAP:
        if score <= listed[0][0]:
            return None
        _low, dropped = listed.pop(0)
        row = session.get(BatchProposal, (batch_id, dropped))
        if row is not None and row.status == ProposalStatus.OPEN:
            session.delete(row)
    proposal = BatchProposal(batch_id=batch_id, message_id=message_id, score=round(score, 4), stage=stage[:20],
                             status=ProposalStatus.OPEN)
    session.add(proposal)
    listed.append((score, message_id))
    listed.sort()
    return proposal


def propose(session: Session, message: Message, scored: Iterable[tuple[int, float]], cfg: ClusterSettings = CFG,
            *, stage: str = "words") -> BatchProposal | None:
    """List the letter on the batch it nearly matches (best score in the band below the join threshold),
    when worth_proposing says a person should decide; at most ``PROPOSE_CAP`` per batch, closest first.

    A pair is proposed once: a pair a person rejected (or added) keeps its row and is not listed again.
    """
    near = _near_miss(scored, cfg)
    if near is None or message.id is None:
        return None
    batch = session.get(Batch, near[0])
    if batch is None or _live(session, batch).status not in TITLED:
        return None
    batch = _live(session, batch)
    if session.get(BatchProposal, (batch.id, message.id)) is not None:
        return None
    found = worth_proposing(message.body_text or "", batch, common_sentences(session))
    if found is None:
        return None
    return _list(session, batch.id, message.id, found[0], found[1] or stage, _open_scores(session, batch.id))


def propose_pool(session: Session, rows: Sequence[tuple[int, str | None]], batches: Sequence[Batch],
                 cfg: ClusterSettings = CFG, *, read: Session | None = None) -> int:
    """Propose pool letters that nearly match any of these batches (word 3-grams in memory, one pass, then
    worth_proposing on the near misses), at most ``PROPOSE_CAP`` per batch, the closest first.

    With `read`, the near misses are found through it (no write lock held while comparing) and `session`
    only lists them."""
    reader = read or session
    by_id = {b.id: b for b in batches if b.template_text}
    templates = {b_id: template_of(b) for b_id, b in by_id.items()}
    index: dict[int, list[int]] = {}
    for batch_id, template in templates.items():
        for h in template.shingles:
            index.setdefault(h, []).append(batch_id)
    if not index:
        return 0
    known = {(b, m) for b, m in reader.execute(select(BatchProposal.batch_id, BatchProposal.message_id).where(
        BatchProposal.batch_id.in_(list(templates))))}
    common = common_sentences(reader)
    found: dict[int, list[tuple[float, int, str]]] = {}
    for message_id, text in rows:
        s = shingles(normalise(text or ""), cfg.shingle_words)
        if len(s) < cfg.min_shingles:
            continue
        hits: Counter[int] = Counter()
        for h in s:
            hits.update(index.get(h, ()))
        scored = sorted(((b, overlap_score(n, len(s), len(templates[b].shingles), cfg)) for b, n in hits.items()),
                        key=lambda item: (-item[1], item[0]))
        near = _near_miss(scored, cfg)
        if near is None or (near[0], message_id) in known:
            continue
        worth = worth_proposing(text or "", by_id[near[0]], common)
        if worth is not None:
            found.setdefault(near[0], []).append((worth[0], message_id, worth[1]))
    if read is not None:
        read.rollback()
    made = 0
    for batch_id, items in found.items():
        listed = _open_scores(session, batch_id)
        for score, message_id, stage in sorted(items, key=lambda item: (-item[0], item[1])):
            made += _list(session, batch_id, message_id, score, stage, listed) is not None
    session.flush()
    return made


def _proposal(session: Session, batch: Batch, message_id: int) -> tuple[BatchProposal, Message]:
    proposal = session.get(BatchProposal, (batch.id, message_id))
    message = session.get(Message, message_id)
    if proposal is None or message is None:
        raise NotFound(f"message {message_id} is not proposed for batch {batch.id}")
    # Decided since it was listed: the state no longer allows it (the API answers 409), not bad input.
    if proposal.status != ProposalStatus.OPEN:
        raise InvalidTransition(f"message {message_id} was already {proposal.status.value} for this batch")
    if message.batch_id is not None:
        raise InvalidTransition(f"message {message_id} is in batch {message.batch_id} now")
    return proposal, message


def add_proposed(session: Session, batch_id: int, message_id: int, *, actor_id: int) -> Message:
    """A person says the letter is part of this campaign: it joins (placed by a person, so kept)."""
    batch = _open_batch(session, batch_id)
    proposal, message = _proposal(session, batch, message_id)
    before = {"message_id": message.id, "pinned": message.batch_pinned, "topic_id": message.topic_id,
              "topic_source": message.topic_source, "stance": message.stance.value if message.stance else None}
    _place(session, message, batch, template_of(batch), pinned=True)
    if message.topic_id is None and batch.topic_id is not None:
        message.topic_id, message.topic_source = batch.topic_id, "batch"
    if message.stance is None and batch.stance is not None:
        message.stance = batch.stance
    proposal.status, proposal.decided_by_id, proposal.decided_at = ProposalStatus.ADDED, actor_id, utcnow()
    batch.member_count = _count(session, batch.id)
    record(session, actor_id=actor_id, action="batch.add_member", object_type="batch", object_id=batch.id,
           before=before, after={"message_id": message.id, "score": proposal.score, "stage": proposal.stage})
    return message


def reject_proposed(session: Session, batch_id: int, message_id: int, *, actor_id: int) -> BatchProposal:
    """A person says the letter is not part of this campaign: never proposed for it or joined to it again."""
    batch = _open_batch(session, batch_id)
    proposal, message = _proposal(session, batch, message_id)
    proposal.status, proposal.decided_by_id, proposal.decided_at = ProposalStatus.REJECTED, actor_id, utcnow()
    record(session, actor_id=actor_id, action="batch.reject_member", object_type="batch", object_id=batch.id,
           before={"message_id": message.id}, after={"message_id": message.id, "score": proposal.score})
    session.flush()
    return proposal


# --- what staff do --------------------------------------------------------------------------------

def _open_batch(session: Session, batch_id: int) -> Batch:
    batch = get_batch(session, batch_id)
    if batch.status == BatchStatus.MERGED:
        raise ValidationFailed(f"batch {batch_id} was merged into batch {batch.merged_into_id}")
    return batch


def merge_batches(session: Session, target_id: int, source_id: int, *, actor_id: int) -> Batch:
    """Fold source into target: its members move, it is marked merged; undo moves them back."""
    if target_id == source_id:
        raise ValidationFailed("choose two different batches to merge")
    target, source = _open_batch(session, target_id), _open_batch(session, source_id)
    ids = list(session.scalars(select(Message.id).where(Message.batch_id == source.id)))
    before_status = source.status.value
    session.execute(update(Message).where(Message.id.in_(ids)).values(batch_id=target.id)
                    .execution_options(synchronize_session="fetch"))
    source.status, source.merged_into_id, source.member_count = BatchStatus.MERGED, target.id, 0
    target.member_count = _count(session, target.id)
    record(session, actor_id=actor_id, action="batch.merge", object_type="batch", object_id=target.id,
           before={"source_id": source.id, "source_status": before_status, "message_ids": ids},
           after={"size": target.member_count})
    return target


def split_members(session: Session, batch_id: int, message_ids: Sequence[int], *, actor_id: int) -> Batch:
    """Move the chosen members out into a batch of their own (placed by a person, so kept)."""
    batch = _open_batch(session, batch_id)
    members = list(session.scalars(select(Message).where(Message.id.in_(set(message_ids)),
                                                         Message.batch_id == batch.id)))
    if not members:
        raise ValidationFailed("select the members to split out")
    if len(members) == batch.member_count:
        raise ValidationFailed("select some members, not all of them: splitting all would leave an empty batch")
    pinned = {str(m.id): m.batch_pinned for m in members}
    new = _new_batch(session, members, build_template([m.body_text or "" for m in members]), actor_id=actor_id,
                     how="split", pinned=True)
    batch.member_count = _count(session, batch.id)
    record(session, actor_id=actor_id, action="batch.split", object_type="batch", object_id=batch.id,
           before={"pinned": pinned}, after={"new_batch_id": new.id, "message_ids": [m.id for m in members]})
    return new


def remove_member(session: Session, batch_id: int, message_id: int, *, actor_id: int) -> Message:
    """Take one letter out; it stays out (clustering will not put it back)."""
    batch = _open_batch(session, batch_id)
    message = session.get(Message, message_id)
    if message is None or message.batch_id != batch.id:
        raise NotFound(f"message {message_id} is not in batch {batch_id}")
    before = {"message_id": message.id, "pinned": message.batch_pinned,
              "similarity": message.batch_similarity, "additions": message.batch_additions}
    message.batch_id, message.batch_similarity, message.batch_additions = None, None, None
    message.batch_pinned = True
    batch.member_count = _count(session, batch.id)
    record(session, actor_id=actor_id, action="batch.remove_member", object_type="batch", object_id=batch.id,
           before=before, after={"message_id": message.id})
    return message


def set_not_campaign(session: Session, batch_id: int, value: bool, *, actor_id: int) -> Batch:
    """Mark (or unmark) a batch as not a campaign: it leaves the batch list and is never re-formed."""
    batch = _open_batch(session, batch_id)
    target = BatchStatus.NOT_CAMPAIGN if value else BatchStatus.OPEN
    if batch.status == target:
        return batch
    before = batch.status.value
    batch.status = target
    record(session, actor_id=actor_id, action="batch.not_campaign" if value else "batch.campaign",
           object_type="batch", object_id=batch.id, before={"status": before}, after={"status": target.value})
    return batch


def _members(session: Session, batch: Batch, open_only: bool = True) -> list[Message]:
    query = select(Message).where(Message.batch_id == batch.id)
    if open_only:
        query = query.where(Message.status.in_(OPEN_STATUSES))
    return list(session.scalars(query.order_by(Message.id)))


def assign_batch(session: Session, batch_id: int, staffer_id: int | None, *, actor_id: int) -> Batch:
    """Give the batch and its open letters to a staffer (None: take them back to unassigned)."""
    batch = _open_batch(session, batch_id)
    if staffer_id is not None:
        staffer = session.get(Staffer, staffer_id)
        if staffer is None or not staffer.active:
            raise ValidationFailed("choose an active staffer")
    previous: dict[str, int | None] = {}
    for m in _members(session, batch):
        if m.assignee_id == staffer_id:
            continue
        previous[str(m.id)] = m.assignee_id
        if staffer_id is None:
            unassign_message(session, m.id, actor_id=actor_id)
        else:
            assign_message(session, m.id, staffer_id, actor_id=actor_id)
    record(session, actor_id=actor_id, action="batch.assign", object_type="batch", object_id=batch.id,
           before={"assignee_id": batch.assignee_id, "messages": previous}, after={"assignee_id": staffer_id})
    batch.assignee_id = staffer_id
    return batch


def set_batch_topic(session: Session, batch_id: int, topic_id: int | None, *, actor_id: int) -> Batch:
    batch = _open_batch(session, batch_id)
    if topic_id is not None and session.get(Topic, topic_id) is None:
        raise ValidationFailed(f"no topic {topic_id}")
    previous = {}
    for m in _members(session, batch, open_only=False):
        if m.topic_id != topic_id:
            previous[str(m.id)] = m.topic_id
            set_topic(session, m.id, topic_id, actor_id=actor_id)
    record(session, actor_id=actor_id, action="batch.topic", object_type="batch", object_id=batch.id,
           before={"topic_id": batch.topic_id, "messages": previous}, after={"topic_id": topic_id})
    batch.topic_id = topic_id
    return batch


def set_batch_stance(session: Session, batch_id: int, stance: Stance | None, *, actor_id: int) -> Batch:
    batch = _open_batch(session, batch_id)
    previous = {}
    for m in _members(session, batch, open_only=False):
        if m.stance != stance:
            previous[str(m.id)] = m.stance.value if m.stance else None
            set_stance(session, m.id, stance, actor_id=actor_id)
    record(session, actor_id=actor_id, action="batch.stance", object_type="batch", object_id=batch.id,
           before={"stance": batch.stance.value if batch.stance else None, "messages": previous},
           after={"stance": stance.value if stance else None})
    batch.stance = stance
    return batch


# --- undo -----------------------------------------------------------------------------------------

UNDOABLE = ("batch.merge", "batch.split", "batch.remove_member", "batch.not_campaign", "batch.campaign",
            "batch.assign", "batch.topic", "batch.stance", "batch.add_member", "batch.reject_member")


def undoable_events(session: Session, batch_id: int, limit: int = 10) -> list[AuditEvent]:
    """The batch's recent staff decisions that have not been undone, newest first."""
    undone = {str(e) for e in session.scalars(
        select(AuditEvent.object_id).where(AuditEvent.action == "batch.undo_event"))}
    events = session.scalars(select(AuditEvent).where(AuditEvent.object_type == "batch",
                                                      AuditEvent.object_id == str(batch_id),
                                                      AuditEvent.action.in_(UNDOABLE))
                             .order_by(AuditEvent.id.desc()).limit(limit * 2))
    return [e for e in events if str(e.id) not in undone][:limit]


def _reopen(session: Session, batch_id: int, message_id: int) -> None:
    """Put a decided proposal back on the batch page's list."""
    proposal = session.get(BatchProposal, (batch_id, message_id))
    if proposal is not None:
        proposal.status, proposal.decided_by_id, proposal.decided_at = ProposalStatus.OPEN, None, None


def undo(session: Session, event_id: int, *, actor_id: int) -> Batch:
    event = session.get(AuditEvent, event_id)
    if event is None or event.action not in UNDOABLE:
        raise NotFound(f"no batch decision {event_id} to undo")
    already = session.scalar(select(AuditEvent.id).where(AuditEvent.action == "batch.undo_event",
                                                         AuditEvent.object_id == str(event.id)))
    if already is not None:
        raise InvalidTransition("that change has already been undone")
    batch = get_batch(session, int(event.object_id))
    before, after = event.before or {}, event.after or {}
    skipped = 0
    if event.action == "batch.merge":
        source = get_batch(session, int(before["source_id"]))
        ids = before.get("message_ids", [])
        session.execute(update(Message).where(Message.id.in_(ids), Message.batch_id == batch.id)
                        .values(batch_id=source.id).execution_options(synchronize_session="fetch"))
        source.status, source.merged_into_id = BatchStatus(before["source_status"]), None
        source.member_count = _count(session, source.id)
    elif event.action == "batch.split":
        new = get_batch(session, int(after["new_batch_id"]))
        for m in session.scalars(select(Message).where(Message.id.in_(after.get("message_ids", [])),
                                                       Message.batch_id == new.id)):
            m.batch_id = batch.id
            m.batch_pinned = bool(before.get("pinned", {}).get(str(m.id), False))
        new.status, new.merged_into_id, new.member_count = BatchStatus.MERGED, batch.id, 0
    elif event.action == "batch.remove_member":
        m = session.get(Message, int(before["message_id"]))
        if m is not None and m.batch_id is None:
            m.batch_id, m.batch_pinned = batch.id, bool(before.get("pinned"))
            m.batch_similarity, m.batch_additions = before.get("similarity"), before.get("additions")
    elif event.action == "batch.add_member":
        m = session.get(Message, int(before["message_id"]))
        if m is not None and m.batch_id == batch.id:
            m.batch_id, m.batch_similarity, m.batch_additions, m.batch_addition_kinds = None, None, None, None
            m.batch_pinned = bool(before.get("pinned"))
            if m.topic_source == "batch" and before.get("topic_id") is None:
                m.topic_id, m.topic_source = None, before.get("topic_source")
            if before.get("stance") is None and m.stance == batch.stance:
                m.stance = None
            _reopen(session, batch.id, m.id)
        else:
            skipped += 1  # moved since: leave it where it is now
    elif event.action == "batch.reject_member":
        _reopen(session, batch.id, int(before["message_id"]))
    elif event.action in ("batch.not_campaign", "batch.campaign"):
        batch.status = BatchStatus(before["status"])
    elif event.action == "batch.assign":
        for message_id, previous in before.get("messages", {}).items():
            try:
                if previous is None:
                    unassign_message(session, int(message_id), actor_id=actor_id)
                else:
                    assign_message(session, int(message_id), int(previous), actor_id=actor_id)
            except DomainError:
                skipped += 1  # closed or reassigned since: leave it as it is now
        batch.assignee_id = before.get("assignee_id")
    elif event.action == "batch.topic":
        for message_id, previous in before.get("messages", {}).items():
            set_topic(session, int(message_id), previous, actor_id=actor_id)
        batch.topic_id = before.get("topic_id")
    elif event.action == "batch.stance":
        for message_id, previous in before.get("messages", {}).items():
            set_stance(session, int(message_id), Stance(previous) if previous else None, actor_id=actor_id)
        batch.stance = Stance(before["stance"]) if before.get("stance") else None
    batch.member_count = _count(session, batch.id)
    record(session, actor_id=actor_id, action="batch.undo_event", object_type="audit_event", object_id=event.id,
           before={"action": event.action, "batch_id": batch.id}, after={"skipped": skipped})
    session.flush()
    return batch
