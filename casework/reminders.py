"""Which case steps are due or overdue for each caseworker, case ageing for the dashboard, and the
daily reminder (shown on the Cases page, and sent by email when SMTP is configured)."""

from __future__ import annotations

import contextlib
import logging
import smtplib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import case as when
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from correspondence.models import Case, CaseStatus, CaseStep, Staffer, utcnow
from correspondence.services.audit import record

if TYPE_CHECKING:
    from drafting.send import SmtpConfig

log = logging.getLogger(__name__)

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
        if due is None:  # the query's `due_at <=` leaves none out; this tells the type checker
            continue
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


@dataclass(frozen=True)
class Reminded:
    caseworkers: int
    emailed: int

    def as_dict(self) -> dict[str, int]:
        return {"caseworkers": self.caseworkers, "emailed": self.emailed}


def remind_due_cases(session: Session, *, now: datetime, mail: SmtpConfig, base_url: str) -> Reminded:
    """Email each active caseworker the steps due or overdue (the Cases page shows the same list), and
    record each email sent (audit "case.reminder").

    Through drafting's SMTP path. Without a server, or with one that cannot be reached, nothing is sent
    and the Cases page still shows what is due. Not exactly-once: if the transaction fails after a send,
    that caseworker hears twice the next day, which a reminder can afford.
    """
    from email.message import EmailMessage

    from drafting.headers import header_text
    from drafting.send import TryLater, connect

    due = due_steps(session, now=now)
    if not due:
        return Reminded(0, 0)
    client = None
    try:
        client = connect(mail, store=session) if mail.configured else None
    except TryLater:
        log.warning("case reminders: SMTP unreachable; the Cases page still shows what is due")
    sent = 0
    try:
        for staffer_id, steps in due.items():
            staffer = session.get(Staffer, staffer_id)
            if staffer is None or not staffer.active or client is None:
                continue
            email = EmailMessage()
            email["From"], email["To"] = header_text(mail.mail_from), header_text(staffer.email)
            email["Subject"] = header_text(f"{len(steps)} case steps due or overdue")
            email.set_content(reminder_text(staffer.name, steps, base_url))
            client.send_message(email)
            sent += 1
            record(session, actor_id=None, action="case.reminder", object_type="staffer", object_id=staffer.id,
                   after={"steps": len(steps)})
    finally:
        if client is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):  # a failed send already says what went wrong
                client.quit()
    session.flush()
    return Reminded(len(due), sent)
