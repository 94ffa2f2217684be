"""The backlog dashboard: open work per staffer, by age, in one grouped query."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from correspondence.models import OPEN_STATUSES, Message, MessageStatus, Staffer, utcnow

# (label, youngest age in days, oldest age in days or None); ages are whole days since receipt.
AGE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0–2 days", 0, 2),
    ("3–7 days", 3, 7),
    ("8–14 days", 8, 14),
    ("15–30 days", 15, 30),
    ("over 30 days", 31, None),
)


@dataclass
class StafferBacklog:
    staffer_id: int | None
    name: str
    role: str
    open_items: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * len(AGE_BUCKETS))
    oldest: datetime | None = None
    overdue: int = 0


@dataclass
class Backlog:
    staff: list[StafferBacklog]
    unassigned: StafferBacklog
    by_status: dict[str, int]
    generated_at: datetime

    @property
    def open_total(self) -> int:
        return sum(self.by_status.get(s.value, 0) for s in OPEN_STATUSES)


def backlog(session: Session, now: datetime | None = None) -> Backlog:
    now = now or utcnow()
    bucket_cols = []
    for _label, young, old in AGE_BUCKETS:
        newest_edge = now - timedelta(days=young)
        cond = Message.received_at <= newest_edge if young else Message.received_at <= now + timedelta(days=1)
        if old is not None:
            cond = cond & (Message.received_at > now - timedelta(days=old + 1))
        bucket_cols.append(func.sum(case((cond, 1), else_=0)))
    overdue = func.sum(case((Message.due_at < now, 1), else_=0))
    query = (
        select(Message.assignee_id, func.count(), func.min(Message.received_at), overdue, *bucket_cols)
        .where(Message.status.in_(OPEN_STATUSES))
        .group_by(Message.assignee_id)
    )
    staff = {s.id: StafferBacklog(s.id, s.name, s.role.value)
             for s in session.scalars(select(Staffer).where(Staffer.active.is_(True)))}
    unassigned = StafferBacklog(None, "Unassigned", "")
    for assignee_id, count, oldest, n_overdue, *buckets in session.execute(query):
        if assignee_id is None:
            row = unassigned
        else:
            row = staff.get(assignee_id)
            if row is None:  # work still sitting with a deactivated account must stay visible
                who = session.get(Staffer, assignee_id)
                row = staff[assignee_id] = StafferBacklog(assignee_id, f"{who.name} (inactive)" if who else
                                                          f"#{assignee_id}", who.role.value if who else "")
        row.open_items = count
        row.oldest = _aware(oldest)
        row.overdue = int(n_overdue or 0)
        row.buckets = [int(b or 0) for b in buckets]
    by_status = {s.value: 0 for s in MessageStatus}
    for status, n in session.execute(select(Message.status, func.count()).group_by(Message.status)):
        by_status[MessageStatus(status).value] = n
    ordered = sorted(staff.values(), key=lambda r: (-r.open_items, r.name))
    return Backlog(ordered, unassigned, by_status, now)


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
