"""Retention rules: how long the office keeps each kind of record, a dry run of what a rule removes, and the run.

Each kind (KINDS) has one rule, stored when an admin saves it: an age in years and whether it is on.
- Campaign mail (letters in a batch): the count and who wrote about what stay (the message row, its
  constituent, topic, stance and batch); the letter's text, its original file (raw input with its
  attachments) and its scan images go.
- Other mail (letters in no batch): the same, and the subject line too (an individual letter's subject is
  often personal).
- Closed casework: the case stays anonymised (category, agency, dates, steps and status, for the office's
  counts); its subject, notes, documents, privacy release and outcome go.

Anything under a legal hold (archive.holds) is skipped and counted as held. The dry run and the run select
with the same queries, so the dry run's counts are what the run removes. A run is one job (RetentionRun)
that works in chunks, each committed with the run's progress; one audit event per run. Blobs no row refers
to any more are deleted safely (archive.unreferenced).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, false, func, not_, or_, select, update
from sqlalchemy.orm import Session

from archive.holds import HeldObjects, held
from archive.unreferenced import drop_unreferenced, restore_set_aside
from correspondence.db import Database
from correspondence.effects import Done, Effect
from correspondence.errors import NotFound, PermissionDenied, ValidationFailed
from correspondence.models import (
    Case,
    CaseDocument,
    CaseNote,
    CaseStatus,
    Direction,
    HelpRequest,
    Message,
    RetentionRule,
    RetentionRun,
    Role,
    RunState,
    Staffer,
    utcnow,
)
from correspondence.services.audit import record
from correspondence.states import run_machine

RUNS = run_machine("retention_run", "retention run")
REMOVED = "(removed under the office's retention rule)"
SAMPLE = 10
CHUNK = 500
MAX_YEARS = 100


@dataclass(frozen=True)
class Kind:
    key: str
    label: str
    keeps: str
    removes: str
    default_years: int


KINDS: dict[str, Kind] = {k.key: k for k in (
    Kind("campaign_mail", "Campaign mail (letters in a batch)",
         "the count, and who wrote about what (topic, stance, batch)",
         "the letter's text, its original file with attachments, and scan images", 6),
    Kind("other_mail", "Other mail (letters in no batch)",
         "the count, and who wrote about what (topic and stance)",
         "the subject, the letter's text, its original file with attachments, and scan images", 6),
    Kind("closed_cases", "Closed casework",
         "the case's category, agency, dates, steps and status",
         "the subject, notes, documents, privacy release and outcome", 10),
)}


@dataclass(frozen=True)
class RuleView:
    """A kind with its rule as the office set it (or the default, off, when never saved)."""

    kind: Kind
    years: int
    active: bool
    saved: bool


def rules(session: Session) -> list[RuleView]:
    stored = {r.kind: r for r in session.scalars(select(RetentionRule))}
    out = []
    for key, kind in KINDS.items():
        rule = stored.get(key)
        out.append(RuleView(kind, rule.years if rule else kind.default_years, bool(rule and rule.active),
                            rule is not None))
    return out


def _admin(session: Session, actor_id: int | None) -> None:
    if actor_id is None:
        return  # the system (the CLI's own unit of work acts for the person at the terminal)
    actor = session.get(Staffer, actor_id)
    if actor is None or not actor.active or actor.role != Role.ADMIN:
        raise PermissionDenied("only an admin may change or run the retention rules")


def set_rule(session: Session, kind: str, *, actor_id: int | None, years: int, active: bool) -> RetentionRule:
    """Save one kind's rule (audited)."""
    _admin(session, actor_id)
    if kind not in KINDS:
        raise ValidationFailed(f"there is no kind of record called {kind!r}")
    if not 1 <= years <= MAX_YEARS:
        raise ValidationFailed(f"keep records between 1 and {MAX_YEARS} years, not {years}")
    rule = session.scalar(select(RetentionRule).where(RetentionRule.kind == kind))
    before = {"years": rule.years, "active": rule.active} if rule else None
    if rule is None:
        rule = RetentionRule(kind=kind, years=years, active=active)
        session.add(rule)
    rule.years, rule.active, rule.updated_by_id = years, active, actor_id
    session.flush()
    record(session, actor_id=actor_id, action="retention_rule.set", object_type="retention_rule", object_id=rule.id,
           before=before, after={"kind": kind, "years": years, "active": active})
    return rule


# --- what a rule selects --------------------------------------------------------------------------------

def _in(column: Any, ids: frozenset[int]) -> ColumnElement[bool]:
    """column IN ids, false (never NULL) for a NULL column, so NOT (... OR ...) keeps rows with no constituent."""
    return and_(column.is_not(None), column.in_(sorted(ids))) if ids else false()


def _mail_due(kind: str, cutoff: datetime) -> list[ColumnElement[bool]]:
    in_batch = Message.batch_id.is_not(None) if kind == "campaign_mail" else Message.batch_id.is_(None)
    has_text = or_(Message.raw_sha256.is_not(None), Message.body_text != "", Message.body_html.is_not(None))
    if kind == "other_mail":
        has_text = or_(has_text, Message.subject != REMOVED)
    return [Message.direction == Direction.INBOUND, in_batch, Message.received_at < cutoff, has_text]


def _message_held(holds: HeldObjects) -> ColumnElement[bool]:
    held_case_sources = select(Case.source_message_id).where(_in(Case.id, holds.cases),
                                                             Case.source_message_id.is_not(None))
    return or_(_in(Message.constituent_id, holds.constituents), _in(Message.batch_id, holds.batches),
               Message.id.in_(held_case_sources))


def _case_due(cutoff: datetime) -> list[ColumnElement[bool]]:
    return [Case.status.in_((CaseStatus.CLOSED, CaseStatus.RESOLVED)), Case.closed_at < cutoff,
            Case.subject != REMOVED]


def _case_held(holds: HeldObjects) -> ColumnElement[bool]:
    return or_(_in(Case.id, holds.cases), _in(Case.constituent_id, holds.constituents))


def _selection(kind: str, cutoff: datetime, holds: HeldObjects, *, held_ones: bool) -> Select[Any]:
    """The ids a rule removes (or, with held_ones, the ones it would remove but for a legal hold)."""
    if kind == "closed_cases":
        hold = _case_held(holds)
        return select(Case.id).where(*_case_due(cutoff), hold if held_ones else not_(hold)).order_by(Case.id)
    hold = _message_held(holds)
    return select(Message.id).where(*_mail_due(kind, cutoff), hold if held_ones else not_(hold)).order_by(Message.id)


def _count(session: Session, query: Select[Any]) -> int:
    return session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0


def _sample(session: Session, kind: str, ids: list[int]) -> list[dict[str, Any]]:
    if kind == "closed_cases":
        return [{"id": c.id, "label": f"Case {c.id}: {c.subject}", "date": c.closed_at.date().isoformat()
                 if c.closed_at else ""}
                for c in session.scalars(select(Case).where(Case.id.in_(ids)).order_by(Case.id))]
    return [{"id": m.id, "label": m.subject or "(no subject)", "date": m.received_at.date().isoformat()}
            for m in session.scalars(select(Message).where(Message.id.in_(ids)).order_by(Message.id))]


def cutoff_for(years: int, now: datetime) -> datetime:
    return now - timedelta(days=round(365.25 * years))


def plan(session: Session, *, now: datetime | None = None, sample: int = SAMPLE) -> dict[str, Any]:
    """The dry run: per active rule, how many records it would remove, how many a hold keeps, and a sample."""
    now = now or utcnow()
    holds = held(session)
    out: dict[str, Any] = {}
    for view in rules(session):
        if not view.active:
            continue
        cutoff = cutoff_for(view.years, now)
        due = _selection(view.kind.key, cutoff, holds, held_ones=False)
        ids: list[int] = list(session.scalars(due.limit(sample)))
        out[view.kind.key] = {"years": view.years, "cutoff": cutoff.date().isoformat(),
                              "removed": _count(session, due),
                              "held": _count(session, _selection(view.kind.key, cutoff, holds, held_ones=True)),
                              "sample": _sample(session, view.kind.key, ids)}
    return out


# --- removing ---------------------------------------------------------------------------------------------

def _scan_images(facts: dict[str, Any] | None) -> list[str]:
    pages = ((facts or {}).get("ocr") or {}).get("pages") or []
    return [p["image"] for p in pages if isinstance(p, dict) and isinstance(p.get("image"), str)]


def strip_messages(session: Session, ids: list[int], *, subject: bool) -> list[str]:
    """Remove the text, original file and scan images of these messages; returns the blobs they named."""
    digests: list[str] = []
    for message in session.scalars(select(Message).where(Message.id.in_(ids))):
        digests.extend(d for d in (message.raw_sha256, *_scan_images(message.facts)) if d)
        message.body_text = ""
        message.body_html = None
        message.raw_sha256 = None
        message.facts = None
        message.batch_additions = None
        message.organization_statement = None
        message.suggestions = None
        if subject:
            message.subject = REMOVED
    return digests


def anonymise_cases(session: Session, ids: list[int], *, text: str = REMOVED) -> list[str]:
    """Keep these cases' shape (category, agency, dates, steps, status) and remove what is about the person;
    returns the blobs they named (documents and releases)."""
    if not ids:
        return []
    digests = list(session.scalars(select(CaseDocument.sha256).where(CaseDocument.case_id.in_(ids))))
    session.execute(delete(CaseDocument).where(CaseDocument.case_id.in_(ids)))
    session.execute(update(CaseNote).where(CaseNote.case_id.in_(ids)).values(text=text))
    session.execute(update(HelpRequest).where(HelpRequest.case_id.in_(ids))
                    .values(email="", phone=None, typed_name="", ip=None))
    for case in session.scalars(select(Case).where(Case.id.in_(ids))):
        if case.release_sha256:
            digests.append(case.release_sha256)
        case.subject, case.outcome, case.agency_contact = text, None, None
        case.release_sha256, case.release_signature = None, None
    return digests


def _remove_chunk(session: Session, kind: str, ids: list[int]) -> int:
    if kind == "closed_cases":
        digests = anonymise_cases(session, ids)
    else:
        digests = strip_messages(session, ids, subject=kind == "other_mail")
    return drop_unreferenced(session, digests)


# --- runs ---------------------------------------------------------------------------------------------------

def start_run(session: Session, *, actor_id: int | None, dry_run: bool) -> Done[RetentionRun]:
    """Ask for a retention run (or its dry run) as a job."""
    _admin(session, actor_id)
    if not dry_run and not any(v.active for v in rules(session)):
        raise ValidationFailed("no retention rule is turned on: turn one on first")
    run = RetentionRun(dry_run=dry_run, created_by_id=actor_id, state=RunState.QUEUED)
    session.add(run)
    session.flush()
    record(session, actor_id=actor_id, action="retention.start", object_type="retention_run", object_id=run.id,
           after={"dry_run": dry_run})
    return Done(run, (Effect.of("retention", run.id),))


def get_run(session: Session, run_id: int) -> RetentionRun:
    run = session.get(RetentionRun, run_id)
    if run is None:
        raise NotFound(f"no retention run {run_id}")
    return run


def latest_runs(session: Session, limit: int = 10) -> list[RetentionRun]:
    return list(session.scalars(select(RetentionRun).order_by(RetentionRun.id.desc()).limit(limit)))


def execute(db: Database, run_id: int, *, now: datetime | None = None,
            progress: Callable[[str, int], None] | None = None) -> dict[str, Any]:
    """The job: a dry run counts; a run removes in chunks, each committed, then records the counts.

    Idempotent: a finished run is left alone, and a run picked up again after a crash selects only what is
    still there to remove (the counts then cover the part done since).
    """
    with db.unit_of_work() as s:
        run = get_run(s, run_id)
        if run.state == RunState.DONE:
            return dict(run.result or {})
        RUNS.move(s, run, RunState.RUNNING, actor_id=None, action="retention.run")
        restore_set_aside(s)
        when = now or utcnow()
        result = plan(s, now=when)
        dry_run = run.dry_run
    try:
        if not dry_run:
            for kind, part in result.items():
                part["removed"] = part["blobs"] = 0
                cutoff = cutoff_for(part["years"], when)
                while True:
                    with db.unit_of_work() as s:
                        ids: list[int] = list(s.scalars(_selection(kind, cutoff, held(s), held_ones=False)
                                                        .limit(CHUNK)))
                        if not ids:
                            break
                        part["blobs"] += _remove_chunk(s, kind, ids)
                        part["removed"] += len(ids)
                    if progress:
                        progress(kind, part["removed"])
    except Exception as exc:
        with db.unit_of_work() as s:
            run = get_run(s, run_id)
            run.error = str(exc)[:500]
            RUNS.move(s, run, RunState.FAILED, actor_id=None, action="retention.fail", detail=run.error)
        raise
    with db.unit_of_work() as s:
        run = get_run(s, run_id)
        run.result = result
        run.finished_at = utcnow()
        counts = {k: {"removed": v["removed"], "held": v["held"]} for k, v in result.items()}
        RUNS.move(s, run, RunState.DONE, actor_id=None,
                  action="retention.dry_run" if dry_run else "retention.finish", after={"counts": counts})
    return result
