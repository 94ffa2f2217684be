"""The backlog dashboard: open work per staffer, by age, in one grouped query."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, tzinfo

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

    @property
    def answer_queued(self) -> int:
        """Answered by a letter that has not left yet: not open work for anyone, but not done either."""
        return self.by_status.get(MessageStatus.ANSWER_QUEUED.value, 0)


def local_midnight(day_offset: int, now: datetime, zone: tzinfo) -> datetime:
    """The UTC moment the office's calendar day `day_offset` days from today (in `zone`) begins."""
    today = now.astimezone(zone).date()
    return datetime.combine(today + timedelta(days=day_offset), time.min, zone).astimezone(UTC)


def backlog(session: Session, now: datetime | None = None, zone: tzinfo = UTC) -> Backlog:
    """Open work per staffer. Each age bucket is its own range count, which the
    (assignee_id, status, received_at, due_at) index answers without reading a row.

    Ages and "overdue" count the office's calendar days (zone): mail from 11 pm yesterday is one day old
    this morning, and a message due today is not overdue until tomorrow."""
    now = now or utcnow()
    open_work = Message.status.in_(OPEN_STATUSES)
    staff = {s.id: StafferBacklog(s.id, s.name, s.role.value)
             for s in session.scalars(select(Staffer).where(Staffer.active.is_(True)))}
    unassigned = StafferBacklog(None, "Unassigned", "")

    def row_for(assignee_id: int | None) -> StafferBacklog:
        if assignee_id is None:
            return unassigned
        if assignee_id not in staff:  # work still sitting with a deactivated account must stay visible
            who = session.get(Staffer, assignee_id)
            staff[assignee_id] = StafferBacklog(assignee_id, f"{who.name} (inactive)" if who else
                                                f"#{assignee_id}", who.role.value if who else "")
        return staff[assignee_id]

    overdue = func.sum(case((Message.due_at < local_midnight(0, now, zone), 1), else_=0))
    totals = select(Message.assignee_id, func.count(), func.min(Message.received_at), overdue).where(
        open_work).group_by(Message.assignee_id)
    for assignee_id, count, oldest, n_overdue in session.execute(totals):
        row = row_for(assignee_id)
        row.open_items, row.oldest, row.overdue = count, _aware(oldest), int(n_overdue or 0)
    for i, (_label, young, old) in enumerate(AGE_BUCKETS):
        # Ages are whole local days: "0-2 days" is received today, yesterday or the day before, and so on.
        query = select(Message.assignee_id, func.count()).where(open_work)
        if young:
            query = query.where(Message.received_at < local_midnight(1 - young, now, zone))
        if old is not None:
            query = query.where(Message.received_at >= local_midnight(-old, now, zone))
        for assignee_id, count in session.execute(query.group_by(Message.assignee_id)):
            row_for(assignee_id).buckets[i] = count
    by_status = {s.value: 0 for s in MessageStatus}
    for status, n in session.execute(select(Message.status, func.count()).group_by(Message.status)):
        by_status[MessageStatus(status).value] = n
    ordered = sorted(staff.values(), key=lambda r: (-r.open_items, r.name))
    return Backlog(ordered, unassigned, by_status, now)


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


# --- Review times (issue 13, "Faster review"): how long letters take to draft and to be approved. ---

REVIEW_WINDOW_DAYS = 90


@dataclass
class ReviewTimes:
    """Days to draft (letter created → first sent for review) apart from days in review (sent → decided).

    Both over versions decided / letters first submitted in the last `window_days`; one-off replies
    are left out of days to draft (they are written and sent for review in one step).
    """

    window_days: int
    drafted: int  # letters first sent for review in the window
    draft_median_days: float | None
    decided: int  # versions approved or returned in the window
    review_median_days: float | None
    waiting: int  # versions in review now
    oldest_waiting_days: float | None


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _days(delta: timedelta) -> float:
    return max(0.0, delta.total_seconds() / 86400)


def review_times(session: Session, now: datetime | None = None, window_days: int = REVIEW_WINDOW_DAYS) -> ReviewTimes:
    from correspondence.models import FormLetter, LetterVersion, VersionState

    now = now or utcnow()
    since = now - timedelta(days=window_days)
    decided = [(_aware(s), _aware(d)) for s, d in session.execute(
        select(LetterVersion.submitted_at, LetterVersion.decided_at).where(
            LetterVersion.decided_at >= since, LetterVersion.submitted_at.is_not(None),
            LetterVersion.state.in_((VersionState.APPROVED, VersionState.CHANGES_REQUESTED, VersionState.RETIRED))))]
    first_submitted = (select(LetterVersion.letter_id, func.min(LetterVersion.submitted_at).label("first"))
                       .group_by(LetterVersion.letter_id).subquery())
    drafted = [(_aware(c), _aware(f)) for c, f in session.execute(
        select(FormLetter.created_at, first_submitted.c.first)
        .join(first_submitted, first_submitted.c.letter_id == FormLetter.id)
        .where(first_submitted.c.first >= since, FormLetter.one_off_message_id.is_(None)))]
    waiting = [_aware(s) for s in session.scalars(select(LetterVersion.submitted_at).where(
        LetterVersion.state == VersionState.IN_REVIEW, LetterVersion.submitted_at.is_not(None)))]
    return ReviewTimes(
        window_days=window_days,
        drafted=len(drafted),
        draft_median_days=_median([_days(f - c) for c, f in drafted if c and f]),
        decided=len(decided),
        review_median_days=_median([_days(d - s) for s, d in decided if s and d]),
        waiting=len(waiting),
        oldest_waiting_days=max((_days(now - s) for s in waiting if s), default=None),
    )
