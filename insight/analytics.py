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
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import case, func, select
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


def _day(value) -> date:  # type: ignore[no-untyped-def]
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 1)


def compute(session: Session, days: int = DAYS, now: datetime | None = None) -> dict:
    now = now or datetime.now(UTC)
    start = now - timedelta(days=days)
    started = time.perf_counter()
    inbound = [Message.direction == Direction.INBOUND, Message.received_at >= start]
    topics = dict(session.execute(select(Topic.id, Topic.name)).all())
    staff = dict(session.execute(select(Staffer.id, Staffer.name)).all())
    charts: dict[str, dict] = {}

    # Incoming volume by day and by week, split by channel.
    daily: dict[date, Counter] = defaultdict(Counter)
    for day, channel, n in session.execute(select(func.date(Message.received_at), Message.channel, func.count())
                                           .where(*inbound).group_by(func.date(Message.received_at),
                                                                     Message.channel)):
        daily[_day(day)][Channel(channel).label] += n
    channels = [c.label for c in Channel]
    all_days = [(start + timedelta(days=i + 1)).date() for i in range(days)]
    charts["volume_daily"] = {"title": f"Incoming mail per day, last {days} days", "kind": "stacked",
                              "columns": ["day", *channels],
                              "rows": [[d.isoformat(), *[daily[d][c] for c in channels]] for d in all_days]}
    weekly: dict[str, Counter] = defaultdict(Counter)
    for d in all_days:
        year, week, _ = d.isocalendar()
        weekly[f"{year}-W{week:02d}"].update(daily[d])
    charts["volume_weekly"] = {"title": "Incoming mail per week", "kind": "stacked", "columns": ["week", *channels],
                               "rows": [[w, *[c[ch] for ch in channels]] for w, c in sorted(weekly.items())]}

    # By topic, and the stance split per topic.
    stance_by_topic: dict[str, Counter] = defaultdict(Counter)
    for topic_id, stance, n in session.execute(select(Message.topic_id, Message.stance, func.count())
                                               .where(*inbound).group_by(Message.topic_id, Message.stance)):
        stance_by_topic[topics.get(topic_id, "(not coded)")][stance.value if stance else "not coded"] += n
    by_topic = sorted(((t, sum(c.values())) for t, c in stance_by_topic.items()), key=lambda r: -r[1])
    charts["by_topic"] = {"title": f"Incoming mail by topic, last {days} days", "kind": "bars",
                          "columns": ["topic", "messages"], "rows": [list(r) for r in by_topic[:15]]}
    stances = ["support", "oppose", "neutral", "not coded"]
    charts["stance_by_topic"] = {
        "title": "Stance per topic", "kind": "stacked", "columns": ["topic", *stances],
        "rows": [[t, *[stance_by_topic[t][s] for s in stances]] for t, _n in by_topic if t != "(not coded)"][:12]}

    # In-district share.
    district = Counter()
    for status, n in session.execute(select(Constituent.district_status, func.count()).select_from(Message).join(
            Constituent, Constituent.id == Message.constituent_id).where(*inbound)
            .group_by(Constituent.district_status)):
        district[status.value if hasattr(status, "value") else str(status)] += n
    unknown_sender = session.scalar(select(func.count()).select_from(Message).where(
        *inbound, Message.constituent_id.is_(None))) or 0
    district["unknown"] += unknown_sender
    total = sum(district.values()) or 1
    charts["district"] = {"title": "In-district share", "kind": "bars", "columns": ["where", "messages", "share %"],
                          "rows": [[k.replace("_", " "), v, round(100 * v / total, 1)]
                                   for k, v in district.most_common()]}

    # Campaigns growing fastest: letters in the last 7 days against the 7 before.
    week_ago, two_weeks_ago = now - timedelta(days=7), now - timedelta(days=14)
    growth = session.execute(select(Message.batch_id,
                                    func.sum(case((Message.received_at >= week_ago, 1), else_=0)),
                                    func.sum(case((Message.received_at < week_ago, 1), else_=0)))
                             .where(Message.batch_id.is_not(None), Message.received_at >= two_weeks_ago)
                             .group_by(Message.batch_id)).all()
    titles = dict(session.execute(select(Batch.id, Batch.title).where(Batch.id.in_([g[0] for g in growth]))).all())
    charts["growing_campaigns"] = {
        "title": "Campaigns growing fastest (letters this week)", "kind": "bars",
        "columns": ["campaign", "last 7 days", "7 days before", "change"],
        "rows": [[titles.get(b, f"batch {b}"), int(a or 0), int(p or 0), int(a or 0) - int(p or 0)]
                 for b, a, p in sorted(growth, key=lambda g: -(int(g[1] or 0) - int(g[2] or 0)))[:10]]}

    # Response time: days from receipt to the letter going out, by staffer and by topic.
    went = func.coalesce(Response.sent_at, Response.created_at)
    by_staffer: dict[str, list[float]] = defaultdict(list)
    by_topic_days: dict[str, list[float]] = defaultdict(list)
    for received, out, assignee, topic_id in session.execute(
            select(Message.received_at, went, Message.assignee_id, Message.topic_id)
            .join(Response, Response.message_id == Message.id)
            .where(Response.state.in_((ResponseState.SENT, ResponseState.TO_PRINT)), went >= start,
                   Message.direction == Direction.INBOUND)):
        if received is None or out is None:
            continue
        if received.tzinfo is None:
            received = received.replace(tzinfo=UTC)
        if out.tzinfo is None:
            out = out.replace(tzinfo=UTC)
        d = max((out - received).total_seconds(), 0) / 86400
        by_staffer[staff.get(assignee, "unassigned")].append(d)
        by_topic_days[topics.get(topic_id, "(not coded)")].append(d)
    for key, groups, label in (("response_by_staffer", by_staffer, "staffer"),
                               ("response_by_topic", by_topic_days, "topic")):
        rows = [[name, len(v), round(statistics.median(v), 1), _pct(v, 0.9)]
                for name, v in sorted(groups.items(), key=lambda kv: -len(kv[1]))][:15]
        charts[key] = {"title": f"Days to answer, by {label} (letters sent in the last {days} days)", "kind": "bars",
                       "columns": [label, "letters", "median days", "90th percentile days"], "rows": rows}

    # Backlog per staffer over time: open mail assigned to each at the end of each of the last weeks.
    ends = [now - timedelta(weeks=w) for w in range(WEEKS - 1, -1, -1)]
    window_start = ends[0]
    closed_at = case((Message.status.in_(OPEN_STATUSES), None),
                     else_=func.coalesce(Response.created_at, Message.updated_at))
    counts: dict[int, list[int]] = defaultdict(lambda: [0] * len(ends))
    for assignee, received, closed in session.execute(
            select(Message.assignee_id, Message.received_at, closed_at)
            .outerjoin(Response, Response.message_id == Message.id)
            .where(Message.assignee_id.is_not(None), Message.direction == Direction.INBOUND,
                   (Message.status.in_(OPEN_STATUSES)) | (func.coalesce(Response.created_at, Message.updated_at)
                                                          >= window_start))):
        received = received if received.tzinfo else received.replace(tzinfo=UTC)
        closed = closed if closed is None or closed.tzinfo else closed.replace(tzinfo=UTC)
        row = counts[assignee]
        for i, t in enumerate(ends):
            if received <= t and (closed is None or closed > t):
                row[i] += 1
    charts["backlog_over_time"] = {
        "title": f"Open mail per staffer at the end of each of the last {WEEKS} weeks", "kind": "lines",
        "columns": ["staffer", *[t.date().isoformat() for t in ends]],
        "rows": [[staff.get(a, f"staffer {a}"), *v] for a, v in sorted(counts.items(),
                                                                           key=lambda kv: -kv[1][-1])][:10]}
    return {"computed_at": now.isoformat(), "days": days, "seconds": round(time.perf_counter() - started, 2),
            "charts": charts}


def latest(session: Session) -> AnalyticsSnapshot | None:
    return session.scalar(select(AnalyticsSnapshot).order_by(AnalyticsSnapshot.id.desc()).limit(1))


def refresh(session: Session, days: int = DAYS) -> AnalyticsSnapshot:
    data = compute(session, days)
    snapshot = AnalyticsSnapshot(days=days, data=data, seconds=data["seconds"])
    session.add(snapshot)
    session.flush()
    # Keep the last few; older snapshots are of no use to anyone.
    old = list(session.scalars(select(AnalyticsSnapshot.id).order_by(AnalyticsSnapshot.id.desc()).offset(5)))
    if old:
        from sqlalchemy import delete

        session.execute(delete(AnalyticsSnapshot).where(AnalyticsSnapshot.id.in_(old)))
    return snapshot


def is_stale(snapshot: AnalyticsSnapshot | None) -> bool:
    if snapshot is None:
        return True
    at = snapshot.computed_at if snapshot.computed_at.tzinfo else snapshot.computed_at.replace(tzinfo=UTC)
    return utcnow() - at > STALE_AFTER
