"""People's rights over what the office holds about them: subject access (a ZIP of everything) and erasure.

Subject access: a supervisor or admin asks for it on the constituent's page; a job builds the ZIP (the record
with its emails, phones and tags; messages with their original files, attachments inside, and scan images;
answers sent; cases with steps, notes, documents and the privacy release; help-form requests; the mail
standing of their addresses; and the audit of changes to all of it), stores it as a blob, and the page
offers it for download. Rows are written with the archive's own column choice (`archive.tables.table_query`:
secrets such as a help form's token hash never leave the database).

Erasure: an admin removes a constituent with a reason, unless a legal hold covers the person, one of their
cases or a batch holding their mail. The record is kept as an empty shell (so counts, batches and cases still
add up), their mail loses its text, sender, original file and scan images (the search index follows: SQLite's
triggers and PostgreSQL's generated column are written by the same statements), their cases are anonymised,
their answers lose address and text, subject access ZIPs are deleted, and blobs no longer referenced are
deleted. The audit keeps that it happened (who, when, the reason, the counts), not what was erased, and the
older audit events about the person, their mail, cases and answers are scrubbed of the names, addresses and
text they carried.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import Table, delete, or_, select, update
from sqlalchemy.orm import Session

from archive.holds import first_hold
from archive.retention import anonymise_cases, strip_messages
from archive.tables import table_query
from archive.unreferenced import drop_unreferenced
from correspondence.db import Database
from correspondence.effects import Done, Effect
from correspondence.errors import NotFound, PermissionDenied, ValidationFailed
from correspondence.models import (
    OPEN_STATUSES,
    AuditEvent,
    Base,
    Case,
    CaseDocument,
    Constituent,
    ConstituentEmail,
    ConstituentPhone,
    ConstituentTag,
    Erasure,
    HelpRequest,
    Message,
    MessageStatus,
    ResponseMessage,
    Role,
    RunState,
    Staffer,
    SubjectAccessExport,
    utcnow,
)
from correspondence.models import Response as Answer
from correspondence.services.audit import record
from correspondence.services.blobs import load_blob, store_blob
from correspondence.states import MESSAGES, run_machine

ACCESS_RUNS = run_machine("subject_access_export", "subject access export")
REQUESTERS = frozenset({Role.ADMIN, Role.SUPERVISOR})
ERASERS = frozenset({Role.ADMIN})
ERASED = "(erased)"
README = """Everything this office's Mailroom holds about one person, as of {when}.

record.json          the constituent record, with every email address, phone number and tag
messages.jsonl       every message from or to them, one JSON object a line
originals/           each message's original file as received (emails hold their attachments), by SHA-256
scans/               page images of scanned letters, by SHA-256
answers.jsonl        the letters the office sent them
cases.jsonl          their cases; case_steps.jsonl, case_notes.jsonl, case_documents.jsonl belong to them
documents/           the case documents and signed privacy releases, by SHA-256 and file name
help_requests.jsonl  what they sent through the public help form
mail_standing.jsonl  whether mail may go to each of their addresses (bounces, complaints, unsubscribes)
audit.jsonl          every recorded change to their record, messages, answers and cases
"""


def _actor(session: Session, actor_id: int, allowed: frozenset[Role], what: str) -> Staffer:
    actor = session.get(Staffer, actor_id)
    if actor is None or not actor.active or actor.role not in allowed:
        raise PermissionDenied(f"only {what} may do this")
    return actor


def _person(session: Session, constituent_id: int) -> Constituent:
    person = session.get(Constituent, constituent_id)
    if person is None:
        raise NotFound(f"no constituent {constituent_id}")
    return person


def _people(session: Session, person: Constituent) -> list[int]:
    """The person's record and the records merged into it (the same person, their history moved here)."""
    merged = session.scalars(select(Constituent.id).where(Constituent.merged_into_id == person.id))
    return [person.id, *merged]


def erasure_of(session: Session, constituent_id: int) -> Erasure | None:
    return session.scalar(select(Erasure).where(Erasure.constituent_id == constituent_id))


# --- subject access --------------------------------------------------------------------------------------

def request_access(session: Session, constituent_id: int, *, actor_id: int) -> Done[SubjectAccessExport]:
    """Ask for the ZIP of everything held about one person (a job builds it); audited."""
    _actor(session, actor_id, REQUESTERS, "a supervisor or an admin")
    person = _person(session, constituent_id)
    if erasure_of(session, person.id) is not None:
        raise ValidationFailed("this record was erased: nothing about the person is held any more")
    export = SubjectAccessExport(constituent_id=person.id, created_by_id=actor_id, state=RunState.QUEUED)
    session.add(export)
    session.flush()
    record(session, actor_id=actor_id, action="subject_access.request", object_type="constituent",
           object_id=person.id, after={"export_id": export.id})
    return Done(export, (Effect.of("subject_access", export.id),))


def exports_of(session: Session, constituent_id: int, limit: int = 5) -> list[SubjectAccessExport]:
    return list(session.scalars(select(SubjectAccessExport).where(SubjectAccessExport.constituent_id == constituent_id)
                                .order_by(SubjectAccessExport.id.desc()).limit(limit)))


def get_export(session: Session, export_id: int) -> SubjectAccessExport:
    export = session.get(SubjectAccessExport, export_id)
    if export is None:
        raise NotFound(f"no subject access export {export_id}")
    return export


def download_export(session: Session, export_id: int, *, actor_id: int) -> tuple[SubjectAccessExport, bytes]:
    """The finished ZIP's bytes; each download is audited (the file holds everything about a person)."""
    _actor(session, actor_id, REQUESTERS, "a supervisor or an admin")
    export = get_export(session, export_id)
    data = load_blob(session, export.sha256) if export.sha256 and export.state == RunState.DONE else None
    if data is None:
        raise ValidationFailed("the file is not ready yet")
    record(session, actor_id=actor_id, action="subject_access.download", object_type="constituent",
           object_id=export.constituent_id, after={"export_id": export.id})
    return export, data


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if hasattr(value, "value") and not isinstance(value, int | float | str):
        return value.value
    return value


def _rows(session: Session, table: Table, condition: Any) -> list[dict[str, Any]]:
    """Rows of one table, the archive's columns (no secrets), as plain JSON values in primary-key order."""
    query = table_query(table, session.get_bind().dialect.name).where(condition)
    return [{k: _json_value(v) for k, v in row._mapping.items()} for row in session.execute(query)]


def _jsonl(rows: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in rows)


def _scan_images(facts: Any) -> list[str]:
    pages = ((facts or {}).get("ocr") or {}).get("pages") or [] if isinstance(facts, dict) else []
    return [p["image"] for p in pages if isinstance(p, dict) and isinstance(p.get("image"), str)]


def subject_access_zip(session: Session, constituent_id: int, *, now: datetime | None = None) -> bytes:
    """The ZIP of everything held about one person (and the records merged into theirs)."""
    person = _person(session, constituent_id)
    ids = _people(session, person)
    t = Base.metadata.tables
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("README.txt", README.format(when=(now or utcnow()).isoformat(timespec="seconds")))
        records = _rows(session, t["constituents"], t["constituents"].c.id.in_(ids))
        for rec in records:
            rec["emails"] = [r["address"] for r in _rows(session, t["constituent_emails"],
                                                         t["constituent_emails"].c.constituent_id == rec["id"])]
            rec["phones"] = [r["number"] for r in _rows(session, t["constituent_phones"],
                                                        t["constituent_phones"].c.constituent_id == rec["id"])]
            rec["tags"] = [r["tag"] for r in _rows(session, t["constituent_tags"],
                                                   t["constituent_tags"].c.constituent_id == rec["id"])]
        zf.writestr("record.json", json.dumps(records[0] if len(records) == 1 else records, indent=2,
                                              sort_keys=True, ensure_ascii=False) + "\n")
        messages = _rows(session, t["messages"], t["messages"].c.constituent_id.in_(ids))
        message_ids = [m["id"] for m in messages]
        zf.writestr("messages.jsonl", _jsonl(messages))
        for m in messages:
            if m.get("raw_sha256") and (data := load_blob(session, m["raw_sha256"])) is not None:
                zf.writestr(f"originals/{m['raw_sha256']}", data)
            for digest in _scan_images(m.get("facts")):
                if (data := load_blob(session, digest)) is not None:
                    zf.writestr(f"scans/{digest}.png", data)
        answer_ids = list(session.scalars(select(Answer.id).where(or_(
            Answer.constituent_id.in_(ids), Answer.message_id.in_(message_ids)))))
        zf.writestr("answers.jsonl", _jsonl(_rows(session, t["responses"], t["responses"].c.id.in_(answer_ids))))
        cases = _rows(session, t["cases"], t["cases"].c.constituent_id.in_(ids))
        case_ids = [c["id"] for c in cases]
        zf.writestr("cases.jsonl", _jsonl(cases))
        for name in ("case_steps", "case_notes", "case_documents"):
            zf.writestr(f"{name}.jsonl", _jsonl(_rows(session, t[name], t[name].c.case_id.in_(case_ids))))
        for doc in session.scalars(select(CaseDocument).where(CaseDocument.case_id.in_(case_ids))):
            if (data := load_blob(session, doc.sha256)) is not None:
                zf.writestr(f"documents/{doc.sha256}-{_safe_name(doc.filename)}", data)
        for c in cases:
            if c.get("release_sha256") and (data := load_blob(session, c["release_sha256"])) is not None:
                zf.writestr(f"documents/{c['release_sha256']}-privacy-release", data)
        zf.writestr("help_requests.jsonl", _jsonl(_rows(session, t["help_requests"],
                                                        t["help_requests"].c.case_id.in_(case_ids))))
        addresses = list(session.scalars(select(ConstituentEmail.address)
                                         .where(ConstituentEmail.constituent_id.in_(ids))))
        zf.writestr("mail_standing.jsonl", _jsonl(_rows(session, t["email_suppressions"],
                                                        t["email_suppressions"].c.address.in_(addresses))))
        zf.writestr("audit.jsonl", _jsonl(_rows(session, t["audit_events"], _about(
            ids, message_ids, case_ids, answer_ids))))
    return out.getvalue()


def _safe_name(name: str) -> str:
    kept = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)[:100].lstrip("._")
    return kept or "document"


def _about(people: list[int], messages: list[int], cases: list[int], answers: list[int]) -> Any:
    """The audit events about these objects."""
    def on(kind: str, ids: list[int]) -> Any:
        return (AuditEvent.object_type == kind) & AuditEvent.object_id.in_([str(i) for i in ids])

    return or_(on("constituent", people), on("message", messages), on("case", cases), on("response", answers))


def build_access(db: Database, export_id: int, *, now: datetime | None = None) -> SubjectAccessExport:
    """The job: build and store the ZIP. Idempotent: a finished export is left alone, and building again gives
    a new ZIP of the same rows (the blob store keeps one copy of identical bytes)."""
    with db.unit_of_work() as s:
        export = get_export(s, export_id)
        if export.state == RunState.DONE:
            return export
        ACCESS_RUNS.move(s, export, RunState.RUNNING, actor_id=None, action="subject_access.run")
    try:
        with db.unit_of_work() as s:
            export = get_export(s, export_id)
            data = subject_access_zip(s, export.constituent_id, now=now)
            export.sha256 = store_blob(s, data, "application/zip")
            export.size = len(data)
            export.finished_at = utcnow()
            ACCESS_RUNS.move(s, export, RunState.DONE, actor_id=None, action="subject_access.finish",
                             after={"bytes": len(data)})
    except Exception as exc:
        with db.unit_of_work() as s:
            export = get_export(s, export_id)
            export.error = str(exc)[:500]
            ACCESS_RUNS.move(s, export, RunState.FAILED, actor_id=None, action="subject_access.fail")
        raise
    return export


# --- erasure --------------------------------------------------------------------------------------------

_WAITING = frozenset({*OPEN_STATUSES, MessageStatus.QUARANTINED})


class HeldByLaw(ValidationFailed):
    """A legal hold covers what would be erased."""


_KIND_WORDS = {"constituent": "this person", "case": "their case", "batch": "a batch holding their mail"}
# Values kept when older audit events are scrubbed: states and kinds, never text about the person.
SAFE_KEYS = frozenset({"status", "state", "priority", "stance", "channel", "kind", "method", "direction",
                       "topic_source", "district_status", "dry_run", "reason_kind"})


def _kept(key: str, value: Any) -> bool:
    if value is None or isinstance(value, bool | int | float):
        return True
    if isinstance(value, str):
        return key in SAFE_KEYS
    return isinstance(value, list) and all(isinstance(v, int) for v in value)


def _scrubbed(values: dict[str, Any] | None) -> dict[str, Any] | None:
    if not isinstance(values, dict):
        return values
    return {key: value if _kept(key, value) else ERASED for key, value in values.items()}


def scrub_audit(session: Session, condition: Any) -> int:
    """Take names, addresses and text out of older audit events about erased objects.

    The audit log is append-only for the application (correspondence.models.audit refuses ORM updates); this is
    the one sanctioned rewrite, done with a Core UPDATE: the events stay (who did what, when), only the values
    that would say what was erased are replaced with "(erased)". Returns how many events were scrubbed.
    """
    events = session.execute(select(AuditEvent.id, AuditEvent.before, AuditEvent.after, AuditEvent.detail)
                             .where(condition)).all()
    table = Base.metadata.tables["audit_events"]
    for event_id, before, after, detail in events:
        session.execute(update(table).where(table.c.id == event_id).values(
            before=_scrubbed(before), after=_scrubbed(after), detail=ERASED if detail else None))
    return len(events)


def erase_constituent(session: Session, constituent_id: int, *, actor_id: int, reason: str) -> Erasure:
    """Erase one person (see the module's docstring); refused while a legal hold covers any of it."""
    _actor(session, actor_id, ERASERS, "an admin")
    person = _person(session, constituent_id)
    reason = " ".join((reason or "").split())
    if not reason:
        raise ValidationFailed("say why the record is erased (for example: the person asked, and on which date)")
    if len(reason) > 500:
        raise ValidationFailed("keep the reason under 500 characters")
    if person.merged_into_id is not None:
        raise ValidationFailed("this record was merged into another: erase that one (it holds this history)")
    if erasure_of(session, person.id) is not None:
        raise ValidationFailed("this record was already erased")
    ids = _people(session, person)
    messages = list(session.scalars(select(Message).where(Message.constituent_id.in_(ids))))
    message_ids = [m.id for m in messages]
    case_ids = list(session.scalars(select(Case.id).where(Case.constituent_id.in_(ids))))
    batch_ids = {m.batch_id for m in messages if m.batch_id is not None}
    hold = first_hold(session, [*(("constituent", i) for i in ids), *(("case", i) for i in case_ids),
                                *(("batch", i) for i in batch_ids)])
    if hold is not None:
        raise HeldByLaw(f"Not erased: a legal hold is on {_KIND_WORDS.get(hold.object_type, hold.object_type)} "
                        f"since {hold.placed_at:%B %-d, %Y} ({hold.reason}). Release the hold first.")
    answer_ids = list(session.scalars(select(Answer.id).where(or_(
        Answer.constituent_id.in_(ids), Answer.message_id.in_(message_ids)))))
    answer_ids += [r for r in session.scalars(select(ResponseMessage.response_id)
                                              .where(ResponseMessage.message_id.in_(message_ids)))
                   if r not in answer_ids]
    # The audit first: the events written below (archiving open mail) carry only states.
    scrubbed = scrub_audit(session, _about(ids, message_ids, case_ids, answer_ids))
    digests = strip_messages(session, message_ids, subject=True)
    for message in messages:
        message.from_name = message.from_address = message.external_id = None
        message.status_reason = message.campaign_id = message.organization = message.delivery_agent = None
        message.batch_addition_kinds = None
        message.idempotency_key = "erased:" + hashlib.sha256(message.idempotency_key.encode()).hexdigest()
        # Mail still waiting for someone would sit in the inbox with nothing in it: archived instead.
        if message.status in _WAITING and MESSAGES.can(message.status, MessageStatus.ARCHIVED):
            MESSAGES.move(session, message, MessageStatus.ARCHIVED, actor_id=None, action="message.archive")
    session.execute(update(Answer).where(Answer.id.in_(answer_ids))
                    .values(to_address=None, subject=ERASED, body_text="", last_error=None))
    digests += anonymise_cases(session, case_ids, text=ERASED)
    exports = list(session.scalars(select(SubjectAccessExport).where(SubjectAccessExport.constituent_id.in_(ids))))
    digests += [e.sha256 for e in exports if e.sha256]
    for export in exports:
        session.delete(export)
    for model in (ConstituentEmail, ConstituentPhone, ConstituentTag):
        session.execute(delete(model).where(model.constituent_id.in_(ids)))
    session.execute(update(Constituent).where(Constituent.id.in_(ids)).values(
        prefix=None, first_name=None, middle_name=None, last_name=None, suffix=None, address1=None,
        address2=None, city=None, state=None, zip5=None, zip4=None))
    session.execute(update(HelpRequest).where(HelpRequest.possible_match_id.in_(ids)).values(possible_match_id=None))
    session.flush()
    session.expire_all()
    blobs = drop_unreferenced(session, digests)
    counts = {"records": len(ids), "messages": len(message_ids), "cases": len(case_ids),
              "answers": len(answer_ids), "files": blobs, "access_exports": len(exports),
              "audit_events_scrubbed": scrubbed}
    erasure = Erasure(constituent_id=person.id, reason=reason, counts=counts, erased_by_id=actor_id,
                      erased_at=utcnow())
    session.add(erasure)
    session.flush()
    record(session, actor_id=actor_id, action="constituent.erase", object_type="constituent", object_id=person.id,
           after=counts, detail=reason)
    return erasure
