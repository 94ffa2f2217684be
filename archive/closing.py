"""Closing an office at the end of a term: a guided series of audited steps, in order.

1. **Stop intake**: the successor's contact is recorded, every mailbox is paused (IMAP polling stops), and the
   public forms (the web-form and CWC APIs, the help page) answer "this office has closed" with that contact.
2. **Auto-reply**: a sender whose mail still reaches Mailroom after that gets one email with the successor's
   contact (once per sender, through the normal send path: a queued letter the send job delivers).
3. **Final export**: the whole office as an archive (archive/export.py) with its manifest, verified against the
   database (archive/verify.py); its folder and the manifest's SHA-256 are recorded.
4. **Hand-over export**: for the successor, the constituent list and the open cases whose constituent
   consented to the transfer (a consent recorded on the case, by whom and when); never a case without it.
5. **Final purge**: constituents, messages, letters sent, cases and stored files are deleted, only while a
   verified final export still matches the database, and only after the office's name is typed to confirm.
   The audit log and the closing record survive it (neither holds a constituent's personal data).

Steps 1, the consent and the auto-replies are use cases (session in, flush, never commit). The exports and the
purge are long work: like `export_archive` they take the database and commit in their own units of work; the
closing page queues them as a job, `mailroom office close ...` runs them in the terminal.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

from sqlalchemy import Delete, Table, delete, select, update
from sqlalchemy.orm import Session

from archive.export import MANIFEST, export_archive, file_sha256
from archive.verify import verify_archive
from correspondence.db import Database
from correspondence.effects import Done, Effect
from correspondence.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from correspondence.models import (
    Base,
    Blob,
    Case,
    CaseDocument,
    CaseNote,
    CaseStatus,
    CaseStep,
    ClosingAutoReply,
    Constituent,
    DeliveryMethod,
    Direction,
    FormLetter,
    MailboxAccount,
    Message,
    OfficeClosing,
    Response,
    ResponseState,
    Staffer,
    utcnow,
)
from correspondence.services.audit import record
from correspondence.services.blobs import load_blob

log = logging.getLogger(__name__)

CLOSING_ID = 1
HANDOVER_FORMAT = "mailroom-handover"
HANDOVER_VERSION = 1
# The steps as the closing page numbers them.
STEPS = ("intake", "auto_reply", "final_export", "handover", "purge")
JOB_STEPS = ("final_export", "handover", "purge")
# Cases still being worked: the hand-over carries these (with consent), never resolved or closed ones.
OPEN_CASE_STATUSES = (CaseStatus.OPEN, CaseStatus.WAITING_ON_CONSTITUENT, CaseStatus.WAITING_ON_AGENCY)

# What the purge deletes, children before parents. Every table that refers (directly or through another) to
# constituents, messages, cases or blobs is here, except the ones in PURGE_KEEPS; tests/test_closing.py
# checks this against the models, so a new table with personal data cannot be forgotten.
PURGED_TABLES = (
    "subject_access_exports", "erasures", "subscriptions", "newsletters",
    "bounces", "response_messages", "responses", "batch_proposals",
    "case_documents", "case_notes", "case_steps", "help_requests", "cases",
    "messages", "constituent_emails", "constituent_phones", "constituent_tags", "constituent_imports",
    "constituents", "email_suppressions", "report_runs", "notices",
)
# Letters written for one message (a one-off reply) are that person's: deleted with their versions, comments,
# runs and approvals. Form letters for everyone stay (the office's own text), as do their versions.
ONE_OFF_LETTER_TABLES = ("review_comments", "apply_runs", "mass_mail_approvals", "letter_versions", "form_letters")
# Tables that refer to a blob but hold no personal data: the blobs they use are kept (the topic model).
PURGE_KEEPS = ("topic_models",)
# Addresses that never get an auto-reply: machines, and mail loops.
_AUTOMATIC_LOCAL_PARTS = ("mailer-daemon", "postmaster", "noreply", "no-reply", "donotreply", "do-not-reply",
                          "bounce", "bounces", "auto-reply", "autoreply")


@dataclass(frozen=True)
class Successor:
    """Who takes over the office's people, as the public is told."""

    name: str
    contact: str


def get_closing(session: Session) -> OfficeClosing | None:
    return session.get(OfficeClosing, CLOSING_ID)


def closed_successor(session: Session) -> Successor | None:
    """The successor the public forms name once intake has stopped; None while the office is open."""
    row = session.execute(select(OfficeClosing.successor_name, OfficeClosing.successor_contact)
                          .where(OfficeClosing.id == CLOSING_ID)).first()
    return Successor(row.successor_name, row.successor_contact) if row else None


def closed_message(office_name: str, successor: Successor) -> str:
    """The public's one paragraph, plain text (pages escape it)."""
    return (f"This office has closed. {office_name} no longer receives messages or requests for help. "
            f"Please contact {successor.name}: {successor.contact}")


def _clean_successor(name: str, contact: str) -> Successor:
    name, contact = (name or "").strip(), (contact or "").strip()
    problems = []
    if not name:
        problems.append("name the successor (the office that takes over)")
    elif len(name) > 200:
        problems.append("the successor's name is longer than 200 characters")
    if not contact:
        problems.append("enter how people reach the successor (address, phone, email or web site)")
    elif len(contact) > 2000:
        problems.append("the successor's contact is longer than 2,000 characters")
    if problems:
        raise ValidationFailed("; ".join(problems))
    return Successor(name, contact)


def stop_intake(session: Session, *, actor_id: int | None, successor_name: str,
                successor_contact: str) -> OfficeClosing:
    """Step 1: record the successor, pause every mailbox; from now on the public forms answer "closed".

    Run again, it only updates the successor's contact (audited) and pauses any mailbox turned on since.
    """
    successor = _clean_successor(successor_name, successor_contact)
    closing = get_closing(session)
    if closing is not None and closing.purged_at is not None:
        raise InvalidTransition("the office's data has been purged; nothing more can change")
    paused = []
    for account in session.scalars(select(MailboxAccount).where(MailboxAccount.active.is_(True))):
        # As the intake page's "turn off" does (correspondence.services.intake_sources), with the same event.
        record(session, actor_id=actor_id, action="mailbox.deactivate", object_type="mailbox", object_id=account.id,
               before={"active": True}, after={"active": False}, detail="the office is closing")
        account.active = False
        paused.append(account.id)
    if closing is None:
        closing = OfficeClosing(id=CLOSING_ID, successor_name=successor.name, successor_contact=successor.contact,
                                intake_stopped_at=utcnow(), intake_stopped_by_id=actor_id)
        session.add(closing)
        session.flush()
        record(session, actor_id=actor_id, action="closing.intake_stopped", object_type="office_closing",
               object_id=CLOSING_ID, after={"successor": successor.name, "mailboxes_paused": len(paused)})
        return closing
    before = {"successor": closing.successor_name, "contact": closing.successor_contact}
    closing.successor_name, closing.successor_contact = successor.name, successor.contact
    session.flush()
    record(session, actor_id=actor_id, action="closing.successor", object_type="office_closing",
           object_id=CLOSING_ID, before=before,
           after={"successor": successor.name, "contact": successor.contact, "mailboxes_paused": len(paused)})
    return closing


def _require_open_closing(session: Session) -> OfficeClosing:
    closing = get_closing(session)
    if closing is None:
        raise InvalidTransition("stop intake first (step 1): the closing starts there")
    if closing.purged_at is not None:
        raise InvalidTransition("the office's data has already been purged")
    return closing


# --- transfer consent on a case -------------------------------------------------------------------

def set_transfer_consent(session: Session, case_id: int, consent: bool, *, actor_id: int) -> Case:
    """Record (or withdraw) the constituent's consent that this case passes to the successor office."""
    case = session.get(Case, case_id)
    if case is None:
        raise NotFound(f"no case {case_id}")
    if consent == (case.transfer_consent_at is not None):
        return case
    before = {"transfer_consent": case.transfer_consent_at is not None}
    if consent:
        case.transfer_consent_at, case.transfer_consent_by_id = utcnow(), actor_id
    else:
        case.transfer_consent_at, case.transfer_consent_by_id = None, None
    session.flush()
    record(session, actor_id=actor_id, action="case.transfer_consent" if consent else "case.transfer_consent_withdrawn",
           object_type="case", object_id=case.id, before=before, after={"transfer_consent": consent})
    return case


# --- step 2: the auto-reply -----------------------------------------------------------------------

def auto_reply_text(office_name: str, successor: Successor) -> tuple[str, str]:
    subject = f"{office_name} has closed"
    body = (f"Thank you for writing to {office_name}.\n\n"
            "This office has closed and can no longer answer messages or help with requests. "
            f"Please contact {successor.name}:\n\n{successor.contact}\n\n"
            "This is an automatic reply; it is sent once.\n")
    return subject[:500], body


def address_hash(address: str) -> str:
    return hashlib.sha256(address.strip().lower().encode("utf-8")).hexdigest()


def _automatic(session: Session, message: Message, mail_domain: str) -> bool:
    """Mail from a machine (RFC 3834 Auto-Submitted, bulk/list precedence, bounce addresses) or from the
    office itself: answering it would start a mail loop."""
    address = (message.from_address or "").strip().lower()
    local, _, domain = address.rpartition("@")
    if not local or local in _AUTOMATIC_LOCAL_PARTS or (mail_domain and domain == mail_domain.lower()):
        return True
    if message.raw_sha256 is None or message.channel.value != "email":
        return False
    raw = load_blob(session, message.raw_sha256) or b""
    head = BytesHeaderParser().parsebytes(raw[:65536])
    submitted = str(head.get("Auto-Submitted", "no")).strip().lower()
    precedence = str(head.get("Precedence", "")).strip().lower()
    return submitted != "no" or precedence in ("bulk", "junk", "list") or head.get("List-Id") is not None


def queue_auto_replies(session: Session, *, office_name: str, mail_domain: str,
                       limit: int = 500) -> Done[int]:
    """Step 2, run every minute: one "this office has closed" email to each sender of mail stored after intake
    stopped, never two to the same address (kept by its SHA-256, so it survives the purge).

    Each reply is a queued letter on that message, sent by the normal send job (suppressed addresses are not
    sent to). Idempotent: a sender already answered is skipped, and a message with a letter is not looked at.
    """
    closing = get_closing(session)
    if closing is None or closing.purged_at is not None:
        return Done(0)
    successor = Successor(closing.successor_name, closing.successor_contact)
    subject, body = auto_reply_text(office_name, successor)
    candidates = list(session.scalars(
        select(Message).outerjoin(Response, Response.message_id == Message.id)
        .where(Message.created_at >= closing.intake_stopped_at, Message.direction == Direction.INBOUND,
               Message.from_address.is_not(None), Response.id.is_(None))
        .order_by(Message.id).limit(limit)))
    hashes = {m.id: address_hash(m.from_address or "") for m in candidates}
    done = set(session.scalars(select(ClosingAutoReply.address_sha256)
                               .where(ClosingAutoReply.address_sha256.in_(set(hashes.values())))))
    made: list[int] = []
    domain = mail_domain or "mailroom.local"
    for message in candidates:
        digest = hashes[message.id]
        if digest in done or _automatic(session, message, mail_domain):
            continue
        response = Response(message_id=message.id, constituent_id=message.constituent_id,
                            method=DeliveryMethod.EMAIL, state=ResponseState.QUEUED,
                            to_address=(message.from_address or "").strip(), subject=subject, body_text=body,
                            email_message_id=f"<mailroom.closing.{os.urandom(12).hex()}@{domain}>")
        session.add(response)
        session.flush()
        session.add(ClosingAutoReply(address_sha256=digest, response_id=response.id))
        # The event names the message and the letter, never the address: the audit log outlives the purge.
        record(session, actor_id=None, action="closing.auto_reply", object_type="message", object_id=message.id,
               after={"response_id": response.id})
        done.add(digest)
        made.append(response.id)
    session.flush()
    return Done(len(made), (Effect.of("send", *made),) if made else ())


# --- step 3: the final export ---------------------------------------------------------------------

def _personal_problems(problems: Iterable[str]) -> list[str]:
    """The verify differences that matter to the purge: the archive's own files, the blobs, and the tables the
    purge deletes. Sign-ins, notices of staff and the closing's own record may change after the export."""
    tables = (*PURGED_TABLES, *ONE_OFF_LETTER_TABLES, "blobs")
    return [p for p in problems
            if not p.startswith("table ") or any(p.startswith(f"table {name}:") for name in tables)]


_WORDS = {"constituents": "constituents", "constituent_emails": "constituents' emails",
          "constituent_phones": "constituents' phones", "constituent_tags": "tags", "messages": "messages",
          "responses": "letters sent", "response_messages": "letters sent", "cases": "cases",
          "case_steps": "case steps", "case_notes": "case notes", "case_documents": "case documents",
          "help_requests": "help requests", "blobs": "stored files"}


def _changed_since(problems: list[str]) -> str:
    """The verify differences in the office's words: which kinds of records changed (the details are logged)."""
    kinds: list[str] = []
    for problem in problems:
        if problem.startswith("table "):
            name = problem[6:].split(":", 1)[0]
            word = _WORDS.get(name, name.replace("_", " "))
        elif problem.startswith(("blob ", "… ")):
            word = "stored files"
        else:
            word = "the export's own files"
        if word not in kinds:
            kinds.append(word)
    log.warning("final export no longer matches: %s", "; ".join(problems[:20]))
    return ", ".join(kinds[:6]) or "the data"


def _set(db: Database, **values: Any) -> None:
    with db.unit_of_work() as s:
        s.execute(update(OfficeClosing).where(OfficeClosing.id == CLOSING_ID).values(**values))


def request_step(session: Session, step: str, *, actor_id: int, dest: Path) -> Done[OfficeClosing]:
    """Queue the final export or the hand-over as a job (the closing page); refused while another step runs."""
    if step not in ("final_export", "handover"):
        raise ValidationFailed(f"{step!r} is not a step that runs as a job")
    closing = _require_open_closing(session)
    if closing.working_on:
        raise InvalidTransition(f"the {_STEP_WORDS[closing.working_on]} is running; wait until it ends")
    closing.working_on, closing.last_error = step, None
    session.flush()
    record(session, actor_id=actor_id, action="closing.step_requested", object_type="office_closing",
           object_id=CLOSING_ID, after={"step": step})
    return Done(closing, (Effect.of("closing_step", actor_id, step=step, dest=str(dest)),))


_STEP_WORDS = {"final_export": "final export", "handover": "hand-over export", "purge": "final purge"}


def run_final_export(db: Database, dest: Path, *, actor_id: int | None) -> dict[str, Any]:
    """Step 3: export everything into the empty folder dest, verify it, record its folder and manifest checksum.

    Returns {"path", "manifest_sha256", "verified", "problems"}. An export that does not verify is recorded as
    such (the purge stays refused) and the differences are shown.
    """
    with db.unit_of_work() as s:
        _require_open_closing(s)
    if db.blobs is None:
        raise ValidationFailed("the database has no blob folder")
    try:
        export_archive(db, dest)
        problems = _personal_problems(verify_archive(db, Path(db.blobs.root), dest))
    except Exception as exc:
        _set(db, working_on=None, last_error=f"the final export failed: {exc}"[:1000])
        raise
    digest = file_sha256(dest / MANIFEST)
    now = utcnow()
    with db.unit_of_work() as s:
        closing = _require_open_closing(s)
        closing.final_export_path, closing.final_export_manifest_sha256 = str(dest.resolve()), digest
        closing.final_export_at, closing.final_export_by_id = now, actor_id
        closing.final_export_verified_at = None if problems else now
        closing.working_on = None
        closing.last_error = (f"The final export does not match the database ({_changed_since(problems)} differ); "
                              "make it again while nothing else is changing.")[:1000] if problems else None
        record(s, actor_id=actor_id, action="closing.final_export", object_type="office_closing",
               object_id=CLOSING_ID, after={"path": str(dest.resolve()), "manifest_sha256": digest,
                                            "verified": not problems, "problems": len(problems)})
    return {"path": str(dest.resolve()), "manifest_sha256": digest, "verified": not problems, "problems": problems}


# --- step 4: the successor hand-over --------------------------------------------------------------

def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def _jsonl(path: Path, rows: Iterator[dict[str, Any]]) -> tuple[int, str]:
    digest = hashlib.sha256()
    count = 0
    with path.open("wb") as fh:
        for row in rows:
            line = (json.dumps(row, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n").encode()
            fh.write(line)
            digest.update(line)
            count += 1
    return count, digest.hexdigest()


def _people(s: Session) -> Iterator[dict[str, Any]]:
    query = (select(Constituent).where(Constituent.merged_into_id.is_(None)).order_by(Constituent.id)
             .execution_options(yield_per=1000))
    for c in s.scalars(query):
        yield {"id": c.id, "prefix": c.prefix, "first_name": c.first_name, "middle_name": c.middle_name,
               "last_name": c.last_name, "suffix": c.suffix, "address1": c.address1, "address2": c.address2,
               "city": c.city, "state": c.state, "zip5": c.zip5, "zip4": c.zip4,
               "emails": [e.address for e in c.emails], "phones": [p.number for p in c.phones]}


def _handover_cases(s: Session, cases: list[Case], names: dict[int, str]) -> Iterator[dict[str, Any]]:
    for case in cases:
        steps = s.scalars(select(CaseStep).where(CaseStep.case_id == case.id).order_by(CaseStep.position))
        notes = s.scalars(select(CaseNote).where(CaseNote.case_id == case.id).order_by(CaseNote.id))
        docs = s.scalars(select(CaseDocument).where(CaseDocument.case_id == case.id).order_by(CaseDocument.id))
        yield {
            "id": case.id, "constituent_id": case.constituent_id, "category": case.category.name,
            "subject": case.subject, "agency": case.agency, "agency_contact": case.agency_contact,
            "status": case.status.value, "priority": case.priority.value, "opened_at": _iso(case.opened_at),
            "due_at": _iso(case.due_at), "transfer_consent_at": _iso(case.transfer_consent_at),
            "transfer_consent_recorded_by": names.get(case.transfer_consent_by_id or 0),
            "steps": [{"title": st.title, "kind": st.kind.value, "due_at": _iso(st.due_at), "done_at": _iso(st.done_at)}
                      for st in steps],
            "notes": [{"at": _iso(n.created_at), "text": n.text} for n in notes],
            "documents": [{"filename": d.filename, "content_type": d.content_type, "size": d.size,
                           "file": f"documents/{d.sha256}", "is_release": d.is_release} for d in docs],
        }


def run_handover(db: Database, dest: Path, *, actor_id: int | None, office_name: str) -> dict[str, Any]:
    """Step 4: the successor's folder: constituents.jsonl (the constituent list: names, addresses, emails and
    phones; no messages), cases.jsonl (open cases with the constituent's consent, their steps, notes and
    documents), documents/ (those cases' files by SHA-256) and manifest.json (counts and a SHA-256 per file).

    Cases without consent are never written; the manifest counts how many were left out.
    """
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ValidationFailed(f"{dest} is not an empty folder; write the hand-over into a new one")
    try:
        (dest / "documents").mkdir(parents=True, exist_ok=True)
        with db.unit_of_work() as s:
            closing = _require_open_closing(s)
            successor = closing.successor_name
            names = dict(s.execute(select(Staffer.id, Staffer.name)).all())
            open_cases = list(s.scalars(select(Case).where(Case.status.in_(OPEN_CASE_STATUSES)).order_by(Case.id)))
            consented = [c for c in open_cases if c.transfer_consent_at is not None]
            files = []
            people, people_sum = _jsonl(dest / "constituents.jsonl", _people(s))
            files.append({"file": "constituents.jsonl", "rows": people, "sha256": people_sum})
            cases, cases_sum = _jsonl(dest / "cases.jsonl", _handover_cases(s, consented, names))
            files.append({"file": "cases.jsonl", "rows": cases, "sha256": cases_sum})
            for doc in s.scalars(select(CaseDocument).where(CaseDocument.case_id.in_([c.id for c in consented]))
                                 .order_by(CaseDocument.id)):
                data = load_blob(s, doc.sha256)
                if data is None:
                    raise ValidationFailed(f"a document of case {doc.case_id} ({doc.filename}) is missing from the "
                                           "blob store")
                (dest / "documents" / doc.sha256).write_bytes(data)
                files.append({"file": f"documents/{doc.sha256}", "rows": None, "sha256": doc.sha256})
    except Exception as exc:
        _set(db, working_on=None, last_error=f"the hand-over export failed: {exc}"[:1000])
        raise
    counts = {"constituents": people, "cases": cases, "open_cases_without_consent": len(open_cases) - len(consented)}
    manifest = {"format": HANDOVER_FORMAT, "format_version": HANDOVER_VERSION, "created_at": utcnow().isoformat(),
                "from_office": office_name, "to_successor": successor, "counts": counts, "files": files}
    tmp = dest / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, dest / MANIFEST)
    digest = file_sha256(dest / MANIFEST)
    with db.unit_of_work() as s:
        closing = _require_open_closing(s)
        closing.handover_path, closing.handover_manifest_sha256 = str(dest.resolve()), digest
        closing.handover_at, closing.handover_by_id, closing.handover_counts = utcnow(), actor_id, counts
        closing.working_on, closing.last_error = None, None
        record(s, actor_id=actor_id, action="closing.handover", object_type="office_closing", object_id=CLOSING_ID,
               after={"path": str(dest.resolve()), "manifest_sha256": digest, **counts})
    return {"path": str(dest.resolve()), "manifest_sha256": digest, **counts}


# --- step 5: the purge ----------------------------------------------------------------------------

def purge_refusal(session: Session) -> str | None:
    """Why the purge cannot run now, in the office's words; None when it may."""
    closing = get_closing(session)
    if closing is None:
        return "stop intake first (step 1)"
    if closing.purged_at is not None:
        return "the office's data has already been purged"
    if closing.final_export_path is None:
        return "there is no final export yet: make and verify the final export (step 3) first"
    if closing.final_export_verified_at is None:
        return "the final export did not verify: make the final export again (step 3)"
    return None


def check_purge(session: Session, *, typed_name: str, office_name: str) -> OfficeClosing:
    refusal = purge_refusal(session)
    if refusal:
        raise PermissionDenied(f"Not purged: {refusal}.")
    if " ".join(typed_name.split()).casefold() != " ".join(office_name.split()).casefold():
        raise ValidationFailed(f"Not purged: type the office's name exactly ({office_name}) to confirm.")
    closing = get_closing(session)
    assert closing is not None  # purge_refusal said so
    return closing


def request_purge(session: Session, *, actor_id: int, typed_name: str, office_name: str) -> Done[OfficeClosing]:
    """The closing page's purge button: checked and confirmed here, then the purge runs as a job."""
    closing = check_purge(session, typed_name=typed_name, office_name=office_name)
    if closing.working_on:
        raise InvalidTransition(f"the {_STEP_WORDS[closing.working_on]} is running; wait until it ends")
    closing.working_on, closing.last_error = "purge", None
    session.flush()
    record(session, actor_id=actor_id, action="closing.step_requested", object_type="office_closing",
           object_id=CLOSING_ID, after={"step": "purge"})
    return Done(closing, (Effect.of("closing_step", actor_id, step="purge"),))


def _table(name: str) -> Table:
    return Base.metadata.tables[name]


def _deleted(s: Session, statement: Delete) -> int:
    result = s.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0)  # a DELETE's result is a CursorResult, which has rowcount


def _delete_personal_rows(s: Session) -> dict[str, int]:
    counts: dict[str, int] = {}
    # One-off letters (a reply written for one message) and what hangs off them.
    letters = select(FormLetter.id).where(FormLetter.one_off_message_id.is_not(None)).scalar_subquery()
    versions = select(_table("letter_versions").c.id).where(_table("letter_versions").c.letter_id.in_(letters))
    s.execute(update(FormLetter).where(FormLetter.id.in_(letters)).values(current_version_id=None))
    for name in PURGED_TABLES:
        if name == "messages":  # what refers to messages is gone; one-off letters refer to them too
            for letter_table in ONE_OFF_LETTER_TABLES:
                t = _table(letter_table)
                if letter_table in ("review_comments", "apply_runs"):
                    where = t.c.version_id.in_(versions.scalar_subquery())
                elif letter_table == "form_letters":
                    where = t.c.one_off_message_id.is_not(None)
                else:
                    where = t.c.letter_id.in_(letters)
                counts[f"one-off {letter_table}"] = _deleted(s, delete(t).where(where))
        counts[name] = _deleted(s, delete(_table(name)))
    # Stored files: every blob but the ones a kept table (the topic model) uses.
    blobs = _table("blobs")
    kept = [fk.parent for name in PURGE_KEEPS for fk in _table(name).foreign_keys if fk.column.table is blobs]
    query = delete(Blob)
    for column in kept:
        query = query.where(Blob.sha256.not_in(select(column).where(column.is_not(None))))
    counts["blobs"] = _deleted(s, query)
    return counts


def run_purge(db: Database, *, actor_id: int | None) -> dict[str, int]:
    """Step 5, after request_purge (or the CLI's confirmation): re-verify the final export against the database,
    then delete the personal data in one transaction, then the stored files no row refers to any more.

    Refused when the final export no longer matches (something was stored after it): make it again first.
    The audit log and the closing record stay.
    """
    started = utcnow()
    with db.unit_of_work() as s:
        refusal = purge_refusal(s)
        closing = get_closing(s)
        if refusal or closing is None:
            raise PermissionDenied(f"Not purged: {refusal}.")
        path, digest = Path(closing.final_export_path or ""), closing.final_export_manifest_sha256
    problems: list[str] = []
    if not (path / MANIFEST).is_file():
        problems.append(f"the final export's manifest is missing from {path}")
    elif file_sha256(path / MANIFEST) != digest:
        problems.append("the final export's manifest.json changed after it was recorded")
    elif db.blobs is not None:
        problems = _personal_problems(verify_archive(db, Path(db.blobs.root), path))
    if problems:
        reason = (f"Not purged: {_changed_since(problems)} changed since the final export, so the export no longer "
                  "holds everything the purge would delete. Make the final export again, then purge.")
        with db.unit_of_work() as s:
            s.execute(update(OfficeClosing).where(OfficeClosing.id == CLOSING_ID)
                      .values(working_on=None, last_error=reason[:1000], final_export_verified_at=None))
            record(s, actor_id=actor_id, action="closing.purge_refused", object_type="office_closing",
                   object_id=CLOSING_ID, after={"problems": len(problems)})
        raise PermissionDenied(reason)
    with db.unit_of_work() as s:
        counts = _delete_personal_rows(s)
        closing = s.get_one(OfficeClosing, CLOSING_ID)
        closing.purged_at, closing.purged_by_id, closing.purge_counts = utcnow(), actor_id, counts
        closing.working_on, closing.last_error = None, None
        record(s, actor_id=actor_id, action="closing.purge", object_type="office_closing", object_id=CLOSING_ID,
               after={"final_export": str(path), "manifest_sha256": digest,
                      "deleted": {k: v for k, v in counts.items() if v}})
    files = remove_unreferenced_blob_files(db, older_than=started)
    _set(db, purge_counts={**counts, "blob files": files})
    return {**counts, "blob files": files}


def remove_unreferenced_blob_files(db: Database, *, older_than: datetime) -> int:
    """Delete the files in the blob store that no blob row names, written before `older_than`.

    A file newer than that may belong to a row not yet committed (a blob is written before its row), so it
    stays; the purge passes its own start time.
    """
    if db.blobs is None:
        return 0
    root = Path(db.blobs.root)
    limit = older_than.timestamp()
    removed = 0
    with db.unit_of_work() as s:
        for folder in sorted(root.glob("??/??")):
            names = {p.name: p for p in folder.iterdir() if p.is_file() and len(p.name) == 64}
            if not names:
                continue
            known = set(s.scalars(select(Blob.sha256).where(Blob.sha256.in_(list(names)))))
            for name, path in names.items():
                if name not in known and path.stat().st_mtime < limit:
                    path.unlink(missing_ok=True)
                    removed += 1
    return removed


def run_step(db: Database, step: str, *, actor_id: int | None, dest: Path | None, office_name: str) -> dict[str, Any]:
    """The closing job's body: one of the long steps by name."""
    if step == "final_export" and dest is not None:
        return run_final_export(db, dest, actor_id=actor_id)
    if step == "handover" and dest is not None:
        return run_handover(db, dest, actor_id=actor_id, office_name=office_name)
    if step == "purge":
        try:
            return run_purge(db, actor_id=actor_id)
        except Exception as exc:
            _set(db, working_on=None, last_error=str(exc)[:1000])
            raise
    raise ValidationFailed(f"unknown closing step {step!r}")


# --- the closing page's picture --------------------------------------------------------------------

@dataclass(frozen=True)
class StepState:
    number: int
    key: str
    title: str
    done: bool
    summary: str


def auto_reply_count(session: Session) -> int:
    from sqlalchemy import func

    return session.scalar(select(func.count()).select_from(ClosingAutoReply)) or 0


def consent_counts(session: Session) -> tuple[int, int]:
    """(open cases with transfer consent, open cases without)."""
    from sqlalchemy import func

    rows = dict(session.execute(select(Case.transfer_consent_at.is_not(None), func.count())
                                .where(Case.status.in_(OPEN_CASE_STATUSES))
                                .group_by(Case.transfer_consent_at.is_not(None))).all())
    return rows.get(True, 0), rows.get(False, 0)
