"""Read-side queries for the batch pages: the list with growth, a batch's members and its geography."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from correspondence.models import (
    Batch,
    BatchProposal,
    BatchStatus,
    Constituent,
    DistrictStatus,
    Message,
    MessageStatus,
    ProposalStatus,
    utcnow,
)

LISTED = (BatchStatus.OPEN, BatchStatus.LETTER_PENDING, BatchStatus.ANSWERED)
SPARK_DAYS = 14


@dataclass(frozen=True)
class Growth:
    last_day: int
    last_week: int
    per_day: list[int]  # oldest first, SPARK_DAYS long


def list_batches(session: Session, statuses: tuple[BatchStatus, ...] = LISTED, limit: int = 200) -> list[Batch]:
    return list(session.scalars(select(Batch).where(Batch.status.in_(statuses))
                                .order_by(Batch.member_count.desc(), Batch.id).limit(limit)))


def growth(session: Session, batch_ids: list[int]) -> dict[int, Growth]:
    """New members per day over the last two weeks, for the list's sparklines."""
    if not batch_ids:
        return {}
    now = utcnow()
    start = (now - timedelta(days=SPARK_DAYS - 1)).date()
    day = func.date(Message.received_at)
    rows = session.execute(select(Message.batch_id, day, func.count())
                           .where(Message.batch_id.in_(batch_ids),
                                  Message.received_at >= now - timedelta(days=SPARK_DAYS))
                           .group_by(Message.batch_id, day)).all()
    per: dict[int, list[int]] = {b: [0] * SPARK_DAYS for b in batch_ids}
    for batch_id, when, count in rows:
        offset = (_as_date(when) - start).days
        if 0 <= offset < SPARK_DAYS:
            per[batch_id][offset] += count
    day_ago, week_ago = now - timedelta(days=1), now - timedelta(days=7)
    recent = dict(session.execute(select(Message.batch_id, func.count()).where(
        Message.batch_id.in_(batch_ids), Message.received_at >= day_ago).group_by(Message.batch_id)).all())
    week = dict(session.execute(select(Message.batch_id, func.count()).where(
        Message.batch_id.in_(batch_ids), Message.received_at >= week_ago).group_by(Message.batch_id)).all())
    return {b: Growth(recent.get(b, 0), week.get(b, 0), per[b]) for b in batch_ids}


def _as_date(value):
    from datetime import date

    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def sparkline_points(values: list[int], width: int = 84, height: int = 20) -> str:
    """SVG polyline points for a small growth chart."""
    top = max(values) or 1
    step = width / max(1, len(values) - 1)
    return " ".join(f"{i * step:.1f},{height - 1 - (v / top) * (height - 2):.1f}" for i, v in enumerate(values))


@dataclass(frozen=True)
class Geography:
    in_district: int
    out_of_district: int
    unknown: int
    top_zips: list[tuple[str, int]]


def geography(session: Session, batch_id: int) -> Geography:
    rows = session.execute(select(Constituent.district_status, Constituent.zip5, func.count())
                           .join(Message, Message.constituent_id == Constituent.id)
                           .where(Message.batch_id == batch_id)
                           .group_by(Constituent.district_status, Constituent.zip5)).all()
    by_status: Counter[DistrictStatus] = Counter()
    zips: Counter[str] = Counter()
    for status, zip5, count in rows:
        by_status[status] += count
        if zip5:
            zips[zip5] += count
    linked = sum(by_status.values())
    total = session.scalar(select(func.count(Message.id)).where(Message.batch_id == batch_id)) or 0
    return Geography(by_status[DistrictStatus.IN_DISTRICT], by_status[DistrictStatus.OUT_OF_DISTRICT],
                     by_status[DistrictStatus.UNKNOWN] + (total - linked), zips.most_common(8))


# What the "their own words" filter can ask for: any addition, or one kind of it.
ADDITION_FILTERS = ("any", "question", "request", "story")


def _with_additions(query, kind: str | None):
    if kind is None:
        return query
    if kind == "any":
        return query.where(Message.batch_additions.is_not(None))
    return query.where(Message.batch_addition_kinds.contains(kind))


def members(session: Session, batch_id: int, *, added_only: bool = False, after_id: int | None = None,
            limit: int = 100, kind: str | None = None) -> list[Message]:
    """A page of members, oldest id first; with added_only, only letters with personal additions, and
    with kind ("question", "request", "story") only letters whose additions include one of that kind."""
    wanted = kind or ("any" if added_only else None)
    query = _with_additions(select(Message).where(Message.batch_id == batch_id), wanted)
    if after_id is not None:
        query = query.where(Message.id > after_id)
    return list(session.scalars(query.order_by(Message.id).limit(limit)))


def count_with_additions(session: Session, batch_id: int, kind: str = "any") -> int:
    return session.scalar(_with_additions(select(func.count(Message.id)).where(Message.batch_id == batch_id),
                                          kind)) or 0


def addition_counts(session: Session, batch_id: int) -> dict[str, int]:
    """How many members added a question, a request, a story (one grouped query)."""
    rows = session.execute(select(Message.batch_addition_kinds, func.count()).where(
        Message.batch_id == batch_id, Message.batch_addition_kinds.is_not(None))
        .group_by(Message.batch_addition_kinds)).all()
    counts = dict.fromkeys(("question", "request", "story"), 0)
    for kinds, n in rows:
        for kind in (kinds or "").split(","):
            if kind in counts:
                counts[kind] += n
    return counts


def proposals(session: Session, batch_id: int, limit: int = 20) -> tuple[int, list[tuple[BatchProposal, Message]]]:
    """Letters that nearly match the batch and are still outside every batch: how many, and the best first.

    A letter also proposed for another open batch, more closely, is listed there only."""
    closer = aliased(BatchProposal)
    elsewhere = (select(closer.message_id).join(Batch, Batch.id == closer.batch_id)
                 .where(closer.message_id == BatchProposal.message_id, closer.batch_id != BatchProposal.batch_id,
                        closer.status == ProposalStatus.OPEN, closer.score > BatchProposal.score,
                        Batch.status.in_(LISTED)))
    where = (BatchProposal.batch_id == batch_id, BatchProposal.status == ProposalStatus.OPEN,
             Message.batch_id.is_(None), Message.status.not_in([MessageStatus.QUARANTINED, MessageStatus.ARCHIVED]),
             ~elsewhere.exists())
    total = session.scalar(select(func.count()).select_from(BatchProposal)
                           .join(Message, Message.id == BatchProposal.message_id).where(*where)) or 0
    rows = session.execute(select(BatchProposal, Message).join(Message, Message.id == BatchProposal.message_id)
                           .where(*where).order_by(BatchProposal.score.desc(), Message.id).limit(limit)).all()
    return total, [(p, m) for p, m in rows]


def other_batches(session: Session, batch_id: int, limit: int = 100) -> list[Batch]:
    """Merge targets: the largest other live batches."""
    return list(session.scalars(select(Batch).where(Batch.id != batch_id, Batch.status.in_(LISTED))
                                .order_by(Batch.member_count.desc()).limit(limit)))
