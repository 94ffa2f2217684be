"""Cases and their steps, with the privacy-release gate: no agency inquiry without a signed release.

Every change goes through a function here that checks it and writes an audit event.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from casework.files import clean_filename, detect_type
from correspondence.errors import NotFound, PermissionDenied, ValidationFailed
from correspondence.ids import parse_id
from correspondence.models import (
    AuditEvent,
    Case,
    CaseCategory,
    CaseDocument,
    CaseNote,
    CasePriority,
    CaseStatus,
    CaseStep,
    Constituent,
    Message,
    Role,
    Staffer,
    StepKind,
    utcnow,
)
from correspondence.services.audit import record
from correspondence.services.blobs import store_blob
from correspondence.states import StateMachine

S = CaseStatus
TRANSITIONS: dict[CaseStatus, frozenset[CaseStatus]] = {
    S.OPEN: frozenset({S.WAITING_ON_CONSTITUENT, S.WAITING_ON_AGENCY, S.RESOLVED, S.CLOSED}),
    S.WAITING_ON_CONSTITUENT: frozenset({S.OPEN, S.WAITING_ON_AGENCY, S.RESOLVED, S.CLOSED}),
    S.WAITING_ON_AGENCY: frozenset({S.OPEN, S.WAITING_ON_CONSTITUENT, S.RESOLVED, S.CLOSED}),
    S.RESOLVED: frozenset({S.CLOSED, S.OPEN}),
    S.CLOSED: frozenset({S.OPEN}),
}
CASES = StateMachine(CaseStatus, TRANSITIONS, "case", field="status", audit_action="case.status")
MAX_DOCUMENT_BYTES = 10 * 1024 * 1024
DOCUMENT_TYPES = ("application/pdf", "image/png", "image/jpeg", "image/tiff")


class PrivacyReleaseMissing(ValidationFailed):
    """The Privacy Act: an agency will not discuss a constituent's file without their signed consent."""


# --- need to know: notes, documents and the signed release -------------------------------------------
# Casework holds what a constituent told the office about their health, benefits, debts and immigration
# status, and a Privacy Act release with their signature. Every staffer may see that a case exists and
# its summary (subject, category, status, steps, whether a release is on file); the private parts are
# for the case's caseworker, supervisors and admins only. Views call these functions; they never decide.
PRIVATE_ROLES = frozenset({Role.ADMIN, Role.SUPERVISOR})
# Timeline events that carry private detail (a document's name, the signer's name and address).
PRIVATE_ACTIONS = frozenset({"case.note", "case.document", "case.release"})
PRIVATE_EXPLAINED = ("Notes, documents and the signed release of a case are seen only by its caseworker, "
                     "supervisors and admins.")


class PrivateToCase(PermissionDenied):
    """The staffer is not the case's caseworker, a supervisor or an admin."""


def may_see_private(staffer: Staffer | None, case: Case) -> bool:
    """Whether this staffer may read and add the case's notes, documents and signed release."""
    if staffer is None or not staffer.active:
        return False
    return staffer.role in PRIVATE_ROLES or (case.caseworker_id is not None and staffer.id == case.caseworker_id)


def check_private(staffer: Staffer | None, case: Case) -> None:
    if not may_see_private(staffer, case):
        raise PrivateToCase(PRIVATE_EXPLAINED)


def _check_actor(session: Session, actor_id: int | None, case: Case) -> None:
    """A staffer adding to the private parts must be allowed to read them; the system (None) always is."""
    if actor_id is not None:
        check_private(session.get(Staffer, actor_id), case)


def private_notes(session: Session, case: Case, viewer: Staffer | None) -> list[CaseNote] | None:
    """The case's notes, newest first, or None when the viewer may not see them."""
    if not may_see_private(viewer, case):
        return None
    return list(session.scalars(select(CaseNote).where(CaseNote.case_id == case.id).order_by(CaseNote.id.desc())
                                .options(selectinload(CaseNote.author))))


def private_documents(session: Session, case: Case, viewer: Staffer | None) -> list[CaseDocument] | None:
    """The case's documents (the signed release among them), newest first, or None when not allowed."""
    if not may_see_private(viewer, case):
        return None
    return list(session.scalars(select(CaseDocument).where(CaseDocument.case_id == case.id)
                                .order_by(CaseDocument.id.desc())))


def get_document(session: Session, case_id: int, document_id: int, *, viewer: Staffer | None) -> CaseDocument:
    """One document of one case, for a viewer allowed to see it (NotFound before PrivateToCase: an id
    that is not this case's says nothing either way)."""
    case = get_case(session, case_id)
    doc = session.get(CaseDocument, document_id)
    if doc is None or doc.case_id != case.id:
        raise NotFound("there is no such document")
    check_private(viewer, case)
    return doc


def get_case(session: Session, case_id: int) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        raise NotFound(f"no case {case_id}")
    return case


def categories(session: Session) -> list[CaseCategory]:
    return list(session.scalars(select(CaseCategory).where(CaseCategory.active.is_(True)).order_by(CaseCategory.id)))


def open_case(session: Session, *, constituent_id: int, category_id: int, subject: str, actor_id: int | None,
              caseworker_id: int | None = None, priority: CasePriority = CasePriority.NORMAL,
              agency: str | None = None, source_message_id: int | None = None) -> Case:
    if session.get(Constituent, constituent_id) is None:
        raise ValidationFailed("a case needs a constituent")
    category = session.get(CaseCategory, category_id)
    if category is None or not category.active:
        raise ValidationFailed("choose a case category")
    subject = subject.strip()
    if not subject:
        raise ValidationFailed("say in a few words what the case is about")
    if caseworker_id is not None:
        worker = session.get(Staffer, caseworker_id)
        if worker is None or not worker.active:
            raise ValidationFailed("choose an active caseworker")
    now = utcnow()
    case = Case(constituent_id=constituent_id, category_id=category.id, subject=subject[:300], priority=priority,
                agency=(agency or category.name)[:200], caseworker_id=caseworker_id, opened_at=now,
                source_message_id=source_message_id, created_by_id=actor_id, status=CaseStatus.OPEN)
    session.add(case)
    session.flush()
    due = now
    for position, template in enumerate(category.steps or [], start=1):
        due = due + timedelta(days=int(template.get("days", 7)))
        session.add(CaseStep(case_id=case.id, position=position, title=str(template.get("title", "Step"))[:200],
                             kind=StepKind(template.get("kind", "task")), due_at=due, assignee_id=caseworker_id))
    case.due_at = due
    record(session, actor_id=actor_id, action="case.open", object_type="case", object_id=case.id,
           after={"category": category.name, "constituent_id": constituent_id, "message_id": source_message_id})
    return case


def open_from_message(session: Session, message_id: int, *, category_id: int, actor_id: int,
                      caseworker_id: int | None = None) -> Case:
    message = session.get(Message, message_id)
    if message is None:
        raise NotFound(f"no message {message_id}")
    if message.constituent_id is None:
        raise ValidationFailed("match the message to a constituent before opening a case")
    return open_case(session, constituent_id=message.constituent_id, category_id=category_id,
                     subject=message.subject or "Request for help", actor_id=actor_id, caseworker_id=caseworker_id,
                     source_message_id=message.id)


def steps(session: Session, case_id: int) -> list[CaseStep]:
    return list(session.scalars(select(CaseStep).where(CaseStep.case_id == case_id).order_by(CaseStep.position)))


def release_on_file(case: Case) -> bool:
    return case.release_received_at is not None and (case.release_sha256 is not None or
                                                     bool(case.release_signature))


def complete_step(session: Session, step_id: int, *, actor_id: int) -> CaseStep:
    step = session.get(CaseStep, step_id)
    if step is None:
        raise NotFound(f"no step {step_id}")
    case = get_case(session, step.case_id)
    if step.done_at is not None:
        raise ValidationFailed("that step is done already")
    if step.kind == StepKind.INQUIRY and not release_on_file(case):
        raise PrivacyReleaseMissing("the agency inquiry cannot be sent yet: no signed privacy release is on file. "
                                    "Upload the signed release (or have the constituent sign the online form) first.")
    if step.kind == StepKind.RELEASE and not release_on_file(case):
        raise PrivacyReleaseMissing("upload the signed privacy release to complete this step")
    step.done_at, step.done_by_id = utcnow(), actor_id
    record(session, actor_id=actor_id, action="case.step_done", object_type="case", object_id=case.id,
           after={"step": step.title, "kind": step.kind.value})
    if step.kind == StepKind.INQUIRY and case.status in (S.OPEN, S.WAITING_ON_CONSTITUENT):
        set_status(session, case.id, S.WAITING_ON_AGENCY, actor_id=actor_id)
    elif step.kind == StepKind.AGENCY_RESPONSE and case.status == S.WAITING_ON_AGENCY:
        set_status(session, case.id, S.OPEN, actor_id=actor_id)
    return step


def set_status(session: Session, case_id: int, target: CaseStatus, *, actor_id: int | None,
               outcome: str | None = None) -> Case:
    case = get_case(session, case_id)
    CASES.check(case.status, target)
    if target == S.CLOSED:
        case.closed_at = utcnow()
    elif target == S.OPEN:
        case.closed_at = None
    if outcome:
        case.outcome = outcome.strip()[:5000]
    return CASES.move(session, case, target, actor_id=actor_id, detail=outcome)


def _document(session: Session, case: Case, data: bytes, filename: str, content_type: str, *,
              actor_id: int | None, is_release: bool) -> CaseDocument:
    """Store an upload; `content_type` (the browser's claim) is ignored in favour of what the bytes are."""
    if not data:
        raise ValidationFailed("the file is empty")
    if len(data) > MAX_DOCUMENT_BYTES:
        raise ValidationFailed(f"the file is over {MAX_DOCUMENT_BYTES // 1048576} MB")
    # What the file is comes from its bytes: a browser's type or a ".pdf" name proves nothing.
    content_type = detect_type(data) or ""
    if content_type not in DOCUMENT_TYPES:
        what = "a signed release" if is_release else "a case document"
        raise ValidationFailed(f"{what} must be a PDF or an image (PNG, JPEG, TIFF); this file is neither, "
                               "whatever its name says")
    name = clean_filename(filename)
    doc = CaseDocument(case_id=case.id, sha256=store_blob(session, data, content_type), filename=name,
                       content_type=content_type, size=len(data), is_release=is_release, uploaded_by_id=actor_id)
    session.add(doc)
    session.flush()
    return doc


def add_document(session: Session, case_id: int, data: bytes, filename: str, content_type: str, *,
                 actor_id: int) -> CaseDocument:
    case = get_case(session, case_id)
    _check_actor(session, actor_id, case)
    doc = _document(session, case, data, filename, content_type, actor_id=actor_id, is_release=False)
    record(session, actor_id=actor_id, action="case.document", object_type="case", object_id=case.id,
           after={"document_id": doc.id, "filename": doc.filename})
    return doc


def record_release(session: Session, case_id: int, data: bytes, filename: str, content_type: str, *,
                   actor_id: int) -> Case:
    """The signed release, uploaded: it is on file from now, and the release step is done."""
    case = get_case(session, case_id)
    _check_actor(session, actor_id, case)
    doc = _document(session, case, data, filename, content_type, actor_id=actor_id, is_release=True)
    case.release_received_at, case.release_sha256, case.release_method = utcnow(), doc.sha256, "upload"
    record(session, actor_id=actor_id, action="case.release", object_type="case", object_id=case.id,
           after={"method": "upload", "document_id": doc.id})
    _finish_release_steps(session, case, actor_id)
    return case


def record_e_signature(session: Session, case_id: int, *, typed_name: str, ip: str | None,
                       actor_id: int | None = None) -> Case:
    """A signature already proven some other way (demo data): it is on file at once.

    A signature typed on the public help form never comes here; it goes through
    casework.help_requests, which puts it on file only once the email and the name are proven.
    """
    case = get_case(session, case_id)
    typed = " ".join(typed_name.split())
    if len(typed) < 3:
        raise ValidationFailed("type your full name to sign")
    now = utcnow()
    case.release_received_at, case.release_method = now, "e_signature"
    case.release_signature = {"typed_name": typed[:200], "signed_at": now.isoformat(), "ip": (ip or "")[:64]}
    record(session, actor_id=actor_id, action="case.release", object_type="case", object_id=case.id,
           after={"method": "e_signature", "typed_name": typed[:200], "ip": (ip or "")[:64]})
    _finish_release_steps(session, case, actor_id)
    return case


def _finish_release_steps(session: Session, case: Case, actor_id: int | None) -> None:
    for step in steps(session, case.id):
        if step.kind == StepKind.RELEASE and step.done_at is None:
            step.done_at, step.done_by_id = utcnow(), actor_id


def add_note(session: Session, case_id: int, text: str, *, actor_id: int) -> CaseNote:
    case = get_case(session, case_id)
    _check_actor(session, actor_id, case)
    if not text.strip():
        raise ValidationFailed("the note is empty")
    note = CaseNote(case_id=case.id, author_id=actor_id, text=text.strip()[:10000])
    session.add(note)
    session.flush()
    record(session, actor_id=actor_id, action="case.note", object_type="case", object_id=case.id,
           after={"note_id": note.id})
    return note


def timeline(session: Session, case_id: int, *, viewer: Staffer | None = None,
             everything: bool = False) -> list[AuditEvent]:
    """The case's history, newest first. Events about notes, documents and the release (which name
    them) are left out unless the viewer may see the private parts, or `everything` (an audit) is asked."""
    query = select(AuditEvent).where(AuditEvent.object_type == "case", AuditEvent.object_id == str(case_id))
    if not everything:
        case = get_case(session, case_id)
        if not may_see_private(viewer, case):
            query = query.where(AuditEvent.action.not_in(PRIVATE_ACTIONS))
    return list(session.scalars(query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(200)))


def list_cases(session: Session, *, caseworker_id: int | None = None, open_only: bool = True,
               limit: int = 200) -> list[Case]:
    query = select(Case)
    if caseworker_id is not None:
        query = query.where(Case.caseworker_id == caseworker_id)
    if open_only:
        query = query.where(Case.status.not_in((S.RESOLVED, S.CLOSED)))
    return list(session.scalars(query.order_by(Case.due_at.asc().nulls_last(), Case.id).limit(limit).options(
        selectinload(Case.constituent), selectinload(Case.category), selectinload(Case.caseworker))))


def _staffer_or_none(session: Session, raw: str | None) -> int | None:
    if not raw:
        return None
    if parse_id(str(raw)) is None or session.get(Staffer, parse_id(str(raw))) is None:
        raise ValidationFailed("choose a staffer from the list")
    return int(raw)


def _due(raw: str | None) -> datetime | None:
    from datetime import UTC, date, time

    if not raw:
        return None
    try:
        return datetime.combine(date.fromisoformat(raw.strip()), time(17, 0), UTC)
    except ValueError:
        raise ValidationFailed("a due date looks like 2026-12-01") from None


def update_details(session: Session, case_id: int, values: dict[str, str], *, actor_id: int) -> Case:
    """Agency, agency contact, priority, caseworker, due date and subject: checked, audited field by field."""
    case = get_case(session, case_id)
    clean: dict[str, object] = {}
    for key, limit in (("subject", 300), ("agency", 200), ("agency_contact", 300)):
        if key in values:
            text = (values[key] or "").strip()
            if len(text) > limit:
                raise ValidationFailed(f"{key.replace('_', ' ')} is longer than {limit} characters")
            if key == "subject" and not text:
                raise ValidationFailed("a case needs a subject")
            clean[key] = text or None
    if "priority" in values:
        try:
            clean["priority"] = CasePriority(values["priority"])
        except ValueError:
            raise ValidationFailed("choose a priority") from None
    if "caseworker_id" in values:
        clean["caseworker_id"] = _staffer_or_none(session, values["caseworker_id"])
    if "due" in values:
        clean["due_at"] = _due(values["due"])
    before = {k: getattr(case, k) for k in clean if getattr(case, k) != clean[k]}
    if not before:
        return case
    for key in before:
        setattr(case, key, clean[key])

    def plain(v: object) -> object:
        return v.isoformat() if hasattr(v, "isoformat") else (v.value if hasattr(v, "value") else v)

    record(session, actor_id=actor_id, action="case.edit", object_type="case", object_id=case.id,
           before={k: plain(v) for k, v in before.items()}, after={k: plain(clean[k]) for k in before})
    return case


def add_step(session: Session, case_id: int, title: str, *, due: str | None, assignee_id: str | None,
             actor_id: int) -> CaseStep:
    case = get_case(session, case_id)
    title = (title or "").strip()
    if not title:
        raise ValidationFailed("a step needs a title")
    if len(title) > 200:
        raise ValidationFailed("the step title is longer than 200 characters")
    last = session.scalar(select(CaseStep.position).where(CaseStep.case_id == case.id)
                          .order_by(CaseStep.position.desc()).limit(1))
    step = CaseStep(case_id=case.id, position=(last or 0) + 1, title=title, kind=StepKind.TASK, due_at=_due(due),
                    assignee_id=_staffer_or_none(session, assignee_id) or case.caseworker_id)
    session.add(step)
    session.flush()
    record(session, actor_id=actor_id, action="case.step_add", object_type="case", object_id=case.id,
           after={"step_id": step.id, "title": title})
    return step


def reassign_step(session: Session, step_id: int, assignee_id: str | None, *, due: str | None,
                  actor_id: int) -> CaseStep:
    step = session.get(CaseStep, step_id)
    if step is None:
        raise NotFound(f"no step {step_id}")
    new_assignee, new_due = _staffer_or_none(session, assignee_id), _due(due) if due else step.due_at
    before = {"assignee_id": step.assignee_id, "due_at": step.due_at.isoformat() if step.due_at else None}
    step.assignee_id, step.due_at = new_assignee, new_due
    record(session, actor_id=actor_id, action="case.step_reassign", object_type="case", object_id=step.case_id,
           before={"step_id": step.id, **before},
           after={"step_id": step.id, "assignee_id": new_assignee, "due_at": new_due.isoformat() if new_due else None})
    return step


STEP_KINDS = {k.value for k in StepKind}


def parse_steps(text: str) -> list[dict]:
    """A step template from lines "kind | title | days" (kind one of release, inquiry, agency_response,
    inform, close, task; days from the previous step's due date)."""
    steps_out = []
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 3 or parts[0] not in STEP_KINDS or not parts[1] or not parts[2].isdigit():
            raise ValidationFailed(f"line {number}: write it as kind | title | days, kind one of "
                                   f"{', '.join(sorted(STEP_KINDS))}")
        if len(parts[1]) > 200 or int(parts[2]) > 365:
            raise ValidationFailed(f"line {number}: the title is at most 200 characters and days at most 365")
        steps_out.append({"kind": parts[0], "title": parts[1], "days": int(parts[2])})
    if not steps_out:
        raise ValidationFailed("a category needs at least one step")
    return steps_out


def save_category(session: Session, name: str, steps_text: str, *, actor_id: int,
                  category_id: int | None = None) -> CaseCategory:
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValidationFailed("a category needs a name of at most 100 characters")
    template = parse_steps(steps_text)
    clash = session.scalar(select(CaseCategory.id).where(CaseCategory.name == name))
    if clash is not None and clash != category_id:
        raise ValidationFailed(f"there is already a category called {name!r}")
    if category_id is None:
        category = CaseCategory(name=name, steps=template, active=True)
        session.add(category)
        session.flush()
        record(session, actor_id=actor_id, action="case_category.create", object_type="case_category",
               object_id=category.id, after={"name": name, "steps": template})
    else:
        found = session.get(CaseCategory, category_id)
        if found is None:
            raise NotFound(f"no category {category_id}")
        category = found
        before = {"name": category.name, "steps": category.steps}
        category.name, category.steps = name, template
        record(session, actor_id=actor_id, action="case_category.edit", object_type="case_category",
               object_id=category.id, before=before, after={"name": name, "steps": template})
    return category


def set_category_active(session: Session, category_id: int, active: bool, *, actor_id: int) -> CaseCategory:
    category = session.get(CaseCategory, category_id)
    if category is None:
        raise NotFound(f"no category {category_id}")
    if category.active != active:
        category.active = active
        record(session, actor_id=actor_id, action="case_category.active", object_type="case_category",
               object_id=category.id, before={"active": not active}, after={"active": active})
    return category


def steps_text(category: CaseCategory) -> str:
    return "\n".join(f"{s['kind']} | {s['title']} | {s['days']}" for s in category.steps or [])
