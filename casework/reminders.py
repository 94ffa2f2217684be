"""Which case steps are due or overdue for each caseworker, case ageing for the dashboard, and the
daily reminder (shown on the Cases page, and sent by email when SMTP is configured)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import case as when
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from correspondence.models import Case, CaseStatus, CaseStep, Staffer, utcnow

CLOSED = (CaseStatus.RESOLVED, CaseStatus.CLOSED)
CASE_AGES: tuple[tuple[str, int, int | None], ...] = (("0–30 days", 0, 30), ("31–60 days", 31, 60),
                                                      ("61–90 days", 61, 90), ("over 90 days", 91, None))


@dataclass
class DueStep:
    step_id: int
    case_id: int
    title: str
    subject: str
    due_at: datetime
    overdue: bool


def due_steps(session: Session, *, staffer_id: int | None = None, now: datetime | None = None,
              within: timedelta = timedelta(days=1), limit: int | None = None) -> dict[int, list[DueStep]]:
    """Open steps of open cases due within a day (or overdue), by the step's assignee (else the caseworker)."""
    now = now or utcnow()
    who = func.coalesce(CaseStep.assignee_id, Case.caseworker_id)
    query = (select(who, CaseStep.id, Case.id, CaseStep.title, Case.subject, CaseStep.due_at)
             .join(Case, Case.id == CaseStep.case_id)
             .where(CaseStep.done_at.is_(None), CaseStep.due_at <= now + within, Case.status.not_in(CLOSED),
                    who.is_not(None)).order_by(CaseStep.due_at))
    if staffer_id is not None:
        query = query.where(who == staffer_id)
    if limit is not None:
        query = query.limit(limit)
    result: dict[int, list[DueStep]] = defaultdict(list)
    for owner, step_id, case_id, title, subject, due in session.execute(query):
        due = due if due.tzinfo else due.replace(tzinfo=now.tzinfo)
        result[owner].append(DueStep(step_id, case_id, title, subject, due, due < now))
    return dict(result)


@dataclass
class CaseAgeing:
    staffer_id: int
    name: str
    buckets: list[int] = field(default_factory=lambda: [0] * len(CASE_AGES))

    @property
    def total(self) -> int:
        return sum(self.buckets)


def case_ageing(session: Session, now: datetime | None = None) -> list[CaseAgeing]:
    """Open cases per caseworker by days since opened, in one grouped query."""
    now = now or utcnow()
    columns = []
    for _label, youngest, oldest in CASE_AGES:
        cond = Case.opened_at <= now - timedelta(days=youngest)
        if oldest is not None:
            cond = cond & (Case.opened_at > now - timedelta(days=oldest + 1))
        columns.append(func.sum(when((cond, 1), else_=0)))
    rows = session.execute(select(Staffer.id, Staffer.name, *columns).join(Case, Case.caseworker_id == Staffer.id)
                           .where(Case.status.not_in(CLOSED)).group_by(Staffer.id, Staffer.name)
                           .order_by(Staffer.name)).all()
    return [CaseAgeing(r[0], r[1], [int(v or 0) for v in r[2:]]) for r in rows]


def reminder_text(name: str, steps: list[DueStep], base_url: str) -> str:
    lines = [f"Good morning {name},", "", "These case steps are due today or overdue:", ""]
    for s in steps:
        state = "OVERDUE since" if s.overdue else "due"
        lines.append(f"- {s.title} — {s.subject} ({state} {s.due_at:%b %d}) {base_url}/cases/{s.case_id}")
    return "\n".join(lines + ["", "— Mailroom"])
