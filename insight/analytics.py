"""Dashboard analytics: how the office is doing, computed as one snapshot the dashboard reads.

Every chart is a small table (columns + rows) so the page draws it and the CSV download gives the
same numbers. Computing them reads a quarter of the mailbox, which at a million messages takes a
few seconds; a job keeps a fresh snapshot (every five minutes, or "Recompute now"), so opening the
dashboard only reads one row.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, delete, func, select
from sqlalchemy.orm import Session

from correspondence.models import (
    OPEN_STATUSES,
    AnalyticsSnapshot,
    Batch,
    Channel,
    Constituent,
    Direction,
    Message,
    Response,
    ResponseState,
    Staffer,
    Topic,
    utcnow,
)

DAYS = 90
WEEKS = 12
STALE_AFTER = timedelta(minutes=15)


Chart = dict[str, Any]  # {"title", "kind", "columns", "rows"}: what the page draws and the CSV downloads


@dataclass(frozen=True)
class _Window:
    """What every chart reads: the period, and the names its ids stand for."""

    now: datetime
    days: int
    topics: dict[int, str]
    staff: dict[int, str]

    @property
    def start(self) -> datetime:
        return self.now - timedelta(days=self.days)

    def inbound(self) -> list[ColumnElement[bool]]:
        return [Message.direction == Direction.INBOUND, Message.received_at >= self.start]

    def topic(self, topic_id: int | None) -> str:
        return self.topics.get(topic_id, "(not coded)") if topic_id is not None else "(not coded)"


def _day(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 1)


def compute(session: Session, days: int = DAYS, now: datetime | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    window = _Window(now=now or datetime.now(UTC), days=days,
                     topics=dict(session.execute(select(Topic.id, Topic.name)).all()),
                     staff=dict(session.execute(select(Staffer.id, Staffer.name)).all()))
    charts: dict[str, Chart] = {
        **_volume_charts(session, window),
        **_topic_charts(session, window),
        "district": _district_chart(session, window),
        "growing_campaigns": _growing_campaigns_chart(session, window),
        **_response_time_charts(session, window),
        "backlog_over_time": _backlog_chart(session, window),
    }
    return {"computed_at": window.now.isoformat(), "days": days,
            "seconds": round(time.perf_counter() - started, 2), "charts": charts}


def _volume_charts(session: Session, w: _Window) -> dict[str, Chart]:
    """Incoming volume by day and by week, split by channel."""
    daily: dict[date, Counter[str]] = defaultdict(Counter)
    for day, channel, n in session.execute(select(func.date(Message.received_at), Message.channel, func.count())
                                           .where(*w.inbound()).group_by(func.date(Message.received_at),
                                                                         Message.channel)):
        daily[_day(day)][Channel(channel).label] += n
    channels = [c.label for c in Channel]
    all_days = [(w.start + timedelta(days=i + 1)).date() for i in range(w.days)]
    weekly: dict[str, Counter[str]] = defaultdict(Counter)
    for d in all_days:
        year, week, _ = d.isocalendar()
        weekly[f"{year}-W{week:02d}"].update(daily[d])
    return {
        "volume_daily": {"title": f"Incoming mail per day, last {w.days} days", "kind": "stacked",
                         "columns": ["day", *channels],
                         "rows": [[d.isoformat(), *[daily[d][c] for c in channels]] for d in all_days]},
        "volume_weekly": {"title": "Incoming mail per week", "kind": "stacked", "columns": ["week", *channels],
                          "rows": [[wk, *[c[ch] for ch in channels]] for wk, c in sorted(weekly.items())]},
    }


def _topic_charts(session: Session, w: _Window) -> dict[str, Chart]:
    """Incoming mail by topic, and the stance split per topic."""
    stance_by_topic: dict[str, Counter[str]] = defaultdict(Counter)
    for topic_id, stance, n in session.execute(select(Message.topic_id, Message.stance, func.count())
                                               .where(*w.inbound()).group_by(Message.topic_id, Message.stance)):
        stance_by_topic[w.topic(topic_id)][stance.value if stance else "not coded"] += n
    by_topic = sorted(((t, sum(c.values())) for t, c in stance_by_topic.items()), key=lambda r: -r[1])
    stances = ["support", "oppose", "neutral", "not coded"]
    return {
        "by_topic": {"title": f"Incoming mail by topic, last {w.days} days", "kind": "bars",
                     "columns": ["topic", "messages"], "rows": [list(r) for r in by_topic[:15]]},
        "stance_by_topic": {
            "title": "Stance per topic", "kind": "stacked", "columns": ["topic", *stances],
            "rows": [[t, *[stance_by_topic[t][s] for s in stances]] for t, _n in by_topic if t != "(not coded)"][:12]},
    }


def _district_chart(session: Session, w: _Window) -> Chart:
    """In-district share of the mail; senders not matched to a constituent count as unknown."""
    district: Counter[str] = Counter()
    for status, n in session.execute(select(Constituent.district_status, func.count()).select_from(Message).join(
            Constituent, Constituent.id == Message.constituent_id).where(*w.inbound())
            .group_by(Constituent.district_status)):
        district[status.value if hasattr(status, "value") else str(status)] += n
    district["unknown"] += session.scalar(select(func.count()).select_from(Message).where(
        *w.inbound(), Message.constituent_id.is_(None))) or 0
    total = sum(district.values()) or 1
    return {"title": "In-district share", "kind": "bars", "columns": ["where", "messages", "share %"],
            "rows": [[k.replace("_", " "), v, round(100 * v / total, 1)] for k, v in district.most_common()]}


def _growing_campaigns_chart(session: Session, w: _Window) -> Chart:
    """Campaigns growing fastest: letters in the last 7 days against the 7 before."""
    week_ago, two_weeks_ago = w.now - timedelta(days=7), w.now - timedelta(days=14)
    growth = session.execute(select(Message.batch_id,
                                    func.sum(case((Message.received_at >= week_ago, 1), else_=0)),
                                    func.sum(case((Message.received_at < week_ago, 1), else_=0)))
                             .where(Message.batch_id.is_not(None), Message.received_at >= two_weeks_ago)
                             .group_by(Message.batch_id)).all()
    titles = dict(session.execute(select(Batch.id, Batch.title).where(Batch.id.in_([g[0] for g in growth])))
                  .all())
    return {
        "title": "Campaigns growing fastest (letters this week)", "kind": "bars",
        "columns": ["campaign", "last 7 days", "7 days before", "change"],
        "rows": [[titles.get(b or 0, f"batch {b}"), int(a or 0), int(p or 0), int(a or 0) - int(p or 0)]
                 for b, a, p in sorted(growth, key=lambda g: -(int(g[1] or 0) - int(g[2] or 0)))[:10]]}


def _response_time_charts(session: Session, w: _Window) -> dict[str, Chart]:
    """Days from receipt to the letter going out, by staffer and by topic."""
    went = func.coalesce(Response.sent_at, Response.created_at)
    by_staffer: dict[str, list[float]] = defaultdict(list)
    by_topic_days: dict[str, list[float]] = defaultdict(list)
    for received, out, assignee, topic_id in session.execute(
            select(Message.received_at, went, Message.assignee_id, Message.topic_id)
            .join(Response, Response.message_id == Message.id)
            .where(Response.state.in_((ResponseState.SENT, ResponseState.TO_PRINT)), went >= w.start,
                   Message.direction == Direction.INBOUND)):
        if received is None or out is None:
            continue
        d = max((_aware(out) - _aware(received)).total_seconds(), 0) / 86400
        by_staffer[w.staff.get(assignee, "unassigned") if assignee is not None else "unassigned"].append(d)
        by_topic_days[w.topic(topic_id)].append(d)
    charts: dict[str, Chart] = {}
    for key, groups, label in (("response_by_staffer", by_staffer, "staffer"),
                               ("response_by_topic", by_topic_days, "topic")):
        rows = [[name, len(v), round(statistics.median(v), 1), _pct(v, 0.9)]
                for name, v in sorted(groups.items(), key=lambda kv: -len(kv[1]))][:15]
        charts[key] = {"title": f"Days to answer, by {label} (letters sent in the last {w.days} days)",
                       "kind": "bars", "columns": [label, "letters", "median days", "90th percentile days"],
                       "rows": rows}
    return charts


def _backlog_chart(session: Session, w: _Window) -> Chart:
    """Open mail assigned to each staffer at the end of each of the last weeks."""
    ends = [w.now - timedelta(weeks=n) for n in range(WEEKS - 1, -1, -1)]
    closed_at = case((Message.status.in_(OPEN_STATUSES), None),
                     else_=func.coalesce(Response.created_at, Message.updated_at))
    counts: dict[int, list[int]] = defaultdict(lambda: [0] * len(ends))
    for assignee, received, closed in session.execute(
            select(Message.assignee_id, Message.received_at, closed_at)
            .outerjoin(Response, Response.message_id == Message.id)
            .where(Message.assignee_id.is_not(None), Message.direction == Direction.INBOUND,
                   (Message.status.in_(OPEN_STATUSES)) | (func.coalesce(Response.created_at, Message.updated_at)
                                                          >= ends[0]))):
        received, closed = _aware(received), (None if closed is None else _aware(closed))
        row = counts[assignee]
        for i, t in enumerate(ends):
            if received <= t and (closed is None or closed > t):
                row[i] += 1
    return {
        "title": f"Open mail per staffer at the end of each of the last {WEEKS} weeks", "kind": "lines",
        "columns": ["staffer", *[t.date().isoformat() for t in ends]],
        "rows": [[w.staff.get(a, f"staffer {a}"), *v]
                 for a, v in sorted(counts.items(), key=lambda kv: -kv[1][-1])][:10]}


def latest(session: Session) -> AnalyticsSnapshot | None:
    return session.scalar(select(AnalyticsSnapshot).order_by(AnalyticsSnapshot.id.desc()).limit(1))


def refresh(session: Session, days: int = DAYS, *, read: Session | None = None) -> AnalyticsSnapshot:
    """Compute and store a snapshot; with `read` (no write lock) the seconds of counting happen there."""
    data = compute(read or session, days)
    if read is not None:
        read.rollback()
    snapshot = AnalyticsSnapshot(days=days, data=data, seconds=data["seconds"])
    session.add(snapshot)
    session.flush()
    # Keep the last few; older snapshots are of no use to anyone.
    old = list(session.scalars(select(AnalyticsSnapshot.id).order_by(AnalyticsSnapshot.id.desc()).offset(5)))
    if old:
        session.execute(delete(AnalyticsSnapshot).where(AnalyticsSnapshot.id.in_(old)))
    return snapshot


def is_stale(snapshot: AnalyticsSnapshot | None) -> bool:
    if snapshot is None:
        return True
    at = snapshot.computed_at if snapshot.computed_at.tzinfo else snapshot.computed_at.replace(tzinfo=UTC)
    return utcnow() - at > STALE_AFTER
