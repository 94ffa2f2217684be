"""Read-side queries for the batch pages: the list with growth, a batch's members and its geography."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from correspondence.models import Batch, BatchStatus, Constituent, DistrictStatus, Message, utcnow

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


def members(session: Session, batch_id: int, *, added_only: bool = False, after_id: int | None = None,
            limit: int = 100) -> list[Message]:
    """A page of members, oldest id first; with added_only, only letters with personal additions."""
    query = select(Message).where(Message.batch_id == batch_id)
    if added_only:
        query = query.where(Message.batch_additions.is_not(None))
    if after_id is not None:
        query = query.where(Message.id > after_id)
    return list(session.scalars(query.order_by(Message.id).limit(limit)))


def count_with_additions(session: Session, batch_id: int) -> int:
    return session.scalar(select(func.count(Message.id)).where(Message.batch_id == batch_id,
                                                               Message.batch_additions.is_not(None))) or 0


def other_batches(session: Session, batch_id: int, limit: int = 100) -> list[Batch]:
    """Merge targets: the largest other live batches."""
    return list(session.scalars(select(Batch).where(Batch.id != batch_id, Batch.status.in_(LISTED))
                                .order_by(Batch.member_count.desc()).limit(limit)))
