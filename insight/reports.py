"""The activity report: what came in, what went out and how fast, for a date range and a segment.

Counts come from the database in month-sized windows, so a long range reports progress as it goes
(the report runs as a job the page follows) and never holds more than one
window's response times at once beyond the list the median needs.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from constituents.segments import SegmentFilter, apply_filter, get_segment
from correspondence.db import Database
from correspondence.effects import Done, Effect
from correspondence.errors import NotFound, ValidationFailed
from correspondence.models import (
    Case,
    Constituent,
    DeliveryMethod,
    Direction,
    Message,
    ReportRun,
    Response,
    ResponseState,
    RunState,
    Topic,
    utcnow,
)
from correspondence.services.audit import record
from correspondence.states import REPORTS

MAX_DAYS = 366 * 10


def _at(day: date) -> datetime:
    return datetime.combine(day, time.min, UTC)


def windows(start: date, end: date) -> list[tuple[datetime, datetime]]:
    """[start, end] (whole days) cut at month boundaries."""
    out = []
    cursor = start
    while cursor <= end:
        next_month = (cursor.replace(day=1) + timedelta(days=32)).replace(day=1)
        stop = min(next_month, end + timedelta(days=1))
        out.append((_at(cursor), _at(stop)))
        cursor = stop
    return out


def parse_params(form: Mapping[str, str], *, session: Session) -> dict[str, Any]:
    try:
        start = date.fromisoformat((form.get("start") or "").strip())
        end = date.fromisoformat((form.get("end") or "").strip())
    except ValueError:
        raise ValidationFailed("give the range as two dates like 2026-01-01") from None
    if end < start:
        raise ValidationFailed("the range ends before it starts")
    if (end - start).days > MAX_DAYS:
        raise ValidationFailed("the range is longer than ten years")
    segment_id = (form.get("segment_id") or "").strip()
    params: dict[str, Any] = {"start": start.isoformat(), "end": end.isoformat(), "segment_id": None}
    if segment_id:
        try:
            params["segment_id"] = get_segment(session, int(segment_id)).id
        except ValueError:
            raise ValidationFailed("choose a segment from the list") from None
    return params


def compute(session: Session, params: dict[str, Any], progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    start, end = date.fromisoformat(params["start"]), date.fromisoformat(params["end"])
    people = None
    if params.get("segment_id"):
        flt = SegmentFilter.from_dict(get_segment(session, params["segment_id"]).filters)
        people = apply_filter(select(Constituent.id), flt)
    channels: Counter[str] = Counter()
    topics: Counter[str] = Counter()
    stances: Counter[str] = Counter()
    sent: Counter[str] = Counter()
    opened = closed = 0
    days: list[float] = []
    topic_names: dict[int | None, str] = dict(session.execute(select(Topic.id, Topic.name)).all())
    parts = windows(start, end)
    for n, (lo, hi) in enumerate(parts, start=1):
        incoming = [Message.direction == Direction.INBOUND, Message.received_at >= lo, Message.received_at < hi]
        if people is not None:
            incoming.append(Message.constituent_id.in_(people))
        for channel, count in session.execute(select(Message.channel, func.count()).where(*incoming)
                                              .group_by(Message.channel)):
            channels[channel.label if hasattr(channel, "label") else str(channel)] += count
        for topic_id, count in session.execute(select(Message.topic_id, func.count()).where(*incoming)
                                               .group_by(Message.topic_id)):
            topics[topic_names.get(topic_id, "(not coded)")] += count
        for stance, count in session.execute(select(Message.stance, func.count()).where(*incoming)
                                             .group_by(Message.stance)):
            stances[stance.value if stance else "(none)"] += count
        # A letter counts when it went out: sent by email, or printed for the post.
        out_time = func.coalesce(Response.sent_at, Response.created_at)
        answered = [((Response.state == ResponseState.SENT) | (Response.state == ResponseState.TO_PRINT)),
                    out_time >= lo, out_time < hi]
        if people is not None:
            answered.append(Response.constituent_id.in_(people))
        for method, count in session.execute(select(Response.method, func.count()).where(*answered)
                                             .group_by(Response.method)):
            sent[DeliveryMethod(method).value] += count
        for received, went in session.execute(select(Message.received_at, out_time).join(
                Response, Response.message_id == Message.id).where(*answered, Message.direction == Direction.INBOUND)):
            if received and went:
                days.append(max((went - received).total_seconds(), 0) / 86400)
        case_people = [Case.constituent_id.in_(people)] if people is not None else []
        opened += session.scalar(select(func.count()).select_from(Case).where(
            Case.opened_at >= lo, Case.opened_at < hi, *case_people)) or 0
        closed += session.scalar(select(func.count()).select_from(Case).where(
            Case.closed_at >= lo, Case.closed_at < hi, *case_people)) or 0
        if progress:
            progress(int(100 * n / len(parts)))
    days.sort()
    return {
        "params": params,
        "incoming": sum(channels.values()),
        "by_channel": dict(channels.most_common()),
        "by_topic": dict(topics.most_common()),
        "by_stance": dict(stances.most_common()),
        "letters_sent": dict(sent), "letters_total": sum(sent.values()),
        "cases_opened": opened, "cases_closed": closed,
        "median_response_days": round(statistics.median(days), 1) if days else None,
        "p90_response_days": round(days[min(len(days) - 1, int(0.9 * len(days)))], 1) if days else None,
        "answered_counted": len(days),
    }


def start_report(session: Session, params: dict[str, Any], *, actor_id: int) -> ReportRun:
    run = ReportRun(params=params, created_by_id=actor_id, state=RunState.QUEUED)
    session.add(run)
    session.flush()
    record(session, actor_id=actor_id, action="report.start", object_type="report_run", object_id=run.id,
           after=params)
    return run


def execute(db: Database, run_id: int) -> None:
    """The job (and the inline path): compute, committing progress as each month is counted.

    Committing between months also means no single long transaction holds SQLite's write lock.
    """
    with db.unit_of_work() as s:
        run = s.get_one(ReportRun, run_id)
        if run is None:
            raise NotFound(f"no report {run_id}")
        if run.state == RunState.DONE:
            return
        params = dict(run.params)
        REPORTS.move(s, run, RunState.RUNNING, actor_id=None, action="report.run")
    try:
        with db.unit_of_work() as s:

            def progress(percent: int) -> None:
                s.execute(update(ReportRun).where(ReportRun.id == run_id).values(progress=percent))
                s.commit()

            result = compute(s, params, progress)
    except Exception as exc:
        with db.unit_of_work() as s:
            run = s.get_one(ReportRun, run_id)
            run.error = f"{type(exc).__name__}: {exc}"[:500]
            REPORTS.move(s, run, RunState.FAILED, actor_id=None, action="report.fail", detail=run.error)
        raise
    with db.unit_of_work() as s:
        run = s.get_one(ReportRun, run_id)
        run.result, run.progress, run.finished_at = result, 100, utcnow()
        REPORTS.move(s, run, RunState.DONE, actor_id=None, action="report.finish")


def get_run(session: Session, run_id: int) -> ReportRun:
    run = session.get(ReportRun, run_id)
    if run is None:
        raise NotFound(f"no report {run_id}")
    return run


def csv_rows(result: dict[str, Any]) -> list[tuple[str, str, object]]:
    rows: list[tuple[str, str, object]] = [
        ("range", "from", result["params"]["start"]), ("range", "to", result["params"]["end"]),
        ("incoming", "total", result["incoming"])]
    rows += [("channel", k, v) for k, v in result["by_channel"].items()]
    rows += [("topic", k, v) for k, v in result["by_topic"].items()]
    rows += [("stance", k, v) for k, v in result["by_stance"].items()]
    rows += [("letters sent", k, v) for k, v in result["letters_sent"].items()]
    rows += [("letters sent", "total", result["letters_total"]), ("cases", "opened", result["cases_opened"]),
             ("cases", "closed", result["cases_closed"]),
             ("response time (days)", "median", result["median_response_days"]),
             ("response time (days)", "90th percentile", result["p90_response_days"])]
    return rows


def queue_report(session: Session, params: dict[str, Any], *, actor_id: int) -> Done[ReportRun]:
    """Start a report and ask for its job (always a job: no page waits on counting, DESIGN invariant 6)."""
    run = start_report(session, params, actor_id=actor_id)
    return Done(run, (Effect.of("report", run.id),))


def restart_stalled_reports(session: Session, *, older_than: timedelta) -> Done[int]:
    """The sweep's part for reports queued or running longer than `older_than` (their job was lost);
    the job resumes them (a finished one is left alone)."""
    cutoff = utcnow() - older_than
    ids = list(session.scalars(select(ReportRun.id).where(ReportRun.state.in_(("queued", "running")),
                                                          ReportRun.created_at < cutoff)))
    return Done(len(ids), (Effect.of("report", *ids),) if ids else ())
