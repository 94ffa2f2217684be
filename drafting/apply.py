"""Apply to all: one approved version answers a whole batch (or a selection), exactly once per message.

``plan`` is the dry run a person sees before confirming. ``start_run`` records the run; the job
``execute_run`` works through it in chunks, each chunk one transaction: it creates one response per
message (``responses.message_id`` is unique, so a second run, or the same run resumed after a
crash, creates nothing twice), renders it in the sandbox, marks the message responded, and after
the commit queues the email deliveries. Letters for the post go into one print PDF at the end.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from correspondence.db import Database
from correspondence.errors import NotFound, PermissionDenied, ValidationFailed
from correspondence.models import (
    ApplyRun,
    Batch,
    BatchStatus,
    Channel,
    DeliveryMethod,
    FormLetter,
    LetterVersion,
    Message,
    MessageStatus,
    Response,
    ResponseState,
    VersionState,
    utcnow,
)
from correspondence.services.audit import record
from correspondence.services.blobs import store_blob
from correspondence.services.messages import mark_responded
from correspondence.states import can_move
from drafting.headers import header_text
from drafting.render import Budget, LetterError, Office, context, render, validate

log = logging.getLogger(__name__)

CHUNK = 500
_EMAIL = re.compile(r"[^@\s<>]+@[^@\s<>]+\.[A-Za-z]{2,}")
# Letters written on paper (or in person) are answered on paper when there is an address.
PAPER_CHANNELS = (Channel.POSTAL, Channel.WALK_IN)


def office_of(settings) -> Office:  # type: ignore[no-untyped-def]
    return Office(name=settings.office_name, member_name=settings.member_name, signature=settings.signature,
                  letterhead=settings.letterhead)


def budget_of(settings) -> Budget:  # type: ignore[no-untyped-def]
    return Budget(max_bytes=settings.letter_max_kb * 1024, seconds=settings.letter_render_seconds)


def has_postal_address(message: Message) -> bool:
    c = message.constituent
    return bool(c and c.address1 and c.city and c.state and c.zip5)


def delivery_for(message: Message) -> DeliveryMethod | None:
    """Email when they wrote electronically and left an address; the post when they wrote on paper."""
    email_ok = bool(message.from_address and _EMAIL.fullmatch(message.from_address.strip()))
    if message.channel in PAPER_CHANNELS and has_postal_address(message):
        return DeliveryMethod.PRINT
    if email_ok:
        return DeliveryMethod.EMAIL
    if has_postal_address(message):
        return DeliveryMethod.PRINT
    return None


@dataclass
class Plan:
    email: int = 0
    print: int = 0
    answered: int = 0
    no_address: int = 0
    cannot: int = 0  # quarantined or archived: not answered by a form letter
    message_ids: list[int] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.message_ids)

    def as_dict(self) -> dict[str, int]:
        return {"total": self.total, "email": self.email, "print": self.print, "answered": self.answered,
                "no_address": self.no_address, "cannot": self.cannot}


def batch_message_ids(session: Session, batch_id: int) -> list[int]:
    return list(session.scalars(select(Message.id).where(Message.batch_id == batch_id).order_by(Message.id)))


def plan(session: Session, message_ids: Sequence[int]) -> Plan:
    result = Plan(message_ids=sorted(set(message_ids)))
    answered = set()
    for chunk in _chunks(result.message_ids, 2000):
        answered.update(session.scalars(select(Response.message_id).where(Response.message_id.in_(chunk))))
        for m in session.scalars(select(Message).where(Message.id.in_(chunk))
                                 .options(selectinload(Message.constituent))):
            if m.id in answered:
                result.answered += 1
            elif not can_move(m.status, MessageStatus.RESPONDED):
                result.cannot += 1
            else:
                method = delivery_for(m)
                if method == DeliveryMethod.EMAIL:
                    result.email += 1
                elif method == DeliveryMethod.PRINT:
                    result.print += 1
                else:
                    result.no_address += 1
    return result


def _chunks(items: Sequence[int], size: int):  # type: ignore[no-untyped-def]
    for i in range(0, len(items), size):
        yield list(items[i:i + size])


def start_run(session: Session, version_id: int, *, actor_id: int, batch_id: int | None = None,
              message_ids: Sequence[int] | None = None) -> ApplyRun:
    version = session.get(LetterVersion, version_id)
    if version is None:
        raise NotFound(f"no letter version {version_id}")
    if version.state != VersionState.APPROVED:
        raise ValidationFailed("only an approved version can be sent; send it for review first")
    problems = validate(version.body) + [f"subject: {p}" for p in validate(version.subject)]
    if problems:  # it reached the database without the check: refuse it before anything is queued
        raise ValidationFailed("this letter cannot be sent: " + "; ".join(problems))
    own = version.letter.one_off_message_id
    if own is not None and (batch_id is not None or sorted(set(message_ids or ())) != [own]):
        raise PermissionDenied(f"this is a one-off reply to message {own}; it answers that message only")
    if batch_id is not None:
        batch = session.get(Batch, batch_id)
        if batch is None:
            raise NotFound(f"no batch {batch_id}")
        ids = batch_message_ids(session, batch_id)
    else:
        ids = sorted(set(message_ids or ()))
    if not ids:
        raise ValidationFailed("there are no messages to answer")
    run = ApplyRun(version_id=version.id, batch_id=batch_id, message_ids=ids, created_by_id=actor_id,
                   total=len(ids), state="queued")
    session.add(run)
    session.flush()
    if batch_id is not None:
        session.execute(update(Batch).where(Batch.id == batch_id, Batch.status == BatchStatus.OPEN)
                        .values(status=BatchStatus.ANSWERED))
    record(session, actor_id=actor_id, action="apply_run.start", object_type="apply_run", object_id=run.id,
           after={"version_id": version.id, "batch_id": batch_id, "messages": len(ids)})
    return run


def new_message_id(domain: str) -> str:
    return f"<mailroom.{uuid.uuid4().hex}@{domain}>"


def _domain(settings) -> str:  # type: ignore[no-untyped-def]
    return (settings.mail_from.rsplit("@", 1)[-1] or "mailroom.local").strip("> ")


def answer(session: Session, message: Message, version: LetterVersion, *, settings, run_id: int | None,  # type: ignore[no-untyped-def]
           actor_id: int | None) -> Response | None:
    """Render and record the response to one message; None when it is answered already or cannot be."""
    return respond(session, message, version.subject, version.body, settings=settings, version_id=version.id,
                   run_id=run_id, actor_id=actor_id)


def respond(session: Session, message: Message, subject_source: str, body_source: str, *, settings,  # type: ignore[no-untyped-def]
            version_id: int | None, run_id: int | None, actor_id: int | None) -> Response | None:
    """Render a letter for one message, record it as its one response, mark the message responded."""
    method = delivery_for(message)
    if method is None or not can_move(message.status, MessageStatus.RESPONDED):
        return None
    values = context(message, message.constituent, office_of(settings))
    budget = budget_of(settings)
    # The subject becomes a mail header: one line, whatever the merge fields held.
    subject = header_text(render(subject_source, values, budget))[:500] or "Your letter"
    body = render(body_source, values, budget)
    response = Response(message_id=message.id, constituent_id=message.constituent_id, version_id=version_id,
                        run_id=run_id, method=method, to_address=message.from_address if method ==
                        DeliveryMethod.EMAIL else None, subject=subject, body_text=body,
                        state=ResponseState.QUEUED if method == DeliveryMethod.EMAIL else ResponseState.TO_PRINT,
                        email_message_id=new_message_id(_domain(settings)), created_by_id=actor_id)
    session.add(response)
    mark_responded(session, message.id, actor_id=actor_id)
    return response


def execute_run(db: Database, run_id: int, settings, *,  # type: ignore[no-untyped-def]
                enqueue_email: Callable[[list[int]], None] | None = None,
                build_print: Callable[[Session, ApplyRun], str | None] | None = None) -> ApplyRun:
    """The job: resumable (it skips what is answered) and safe to run twice."""
    with db.unit_of_work() as s:
        run = s.get(ApplyRun, run_id)
        if run is None:
            raise NotFound(f"no apply run {run_id}")
        if run.state == "done":
            return run
        ids, version_id, actor_id = list(run.message_ids), run.version_id, run.created_by_id
        own = s.get(LetterVersion, version_id).letter.one_off_message_id
        refused = None
        if own is not None and ids != [own]:
            # A run recorded before start_run checked this: a one-off reply answers its own message only.
            refused = f"a one-off reply to message {own} answers that message only; nothing was sent"
            run.state, run.error = "failed", refused
            record(s, actor_id=None, action="apply_run.refused", object_type="apply_run", object_id=run.id,
                   detail=refused)
        else:
            run.state = "running"
    if refused is not None:
        raise PermissionDenied(refused)
    for chunk in _chunks(ids, CHUNK):
        emails: list[int] = []
        made: list[Response] = []
        try:
            with db.unit_of_work() as s:
                version = s.get(LetterVersion, version_id)
                answered = set(s.scalars(select(Response.message_id).where(Response.message_id.in_(chunk))))
                created = skipped = 0
                for m in s.scalars(select(Message).where(Message.id.in_(chunk))
                                   .options(selectinload(Message.constituent), selectinload(Message.topic))):
                    if m.id in answered:
                        skipped += 1
                        continue
                    response = answer(s, m, version, settings=settings, run_id=run_id, actor_id=actor_id)
                    if response is None:
                        skipped += 1
                        continue
                    created += 1
                    made.append(response)
                s.flush()
                emails = [r.id for r in made if r.method == DeliveryMethod.EMAIL]
                s.execute(update(ApplyRun).where(ApplyRun.id == run_id).values(
                    done=ApplyRun.done + len(chunk), created_count=ApplyRun.created_count + created,
                    skipped=ApplyRun.skipped + skipped))
        except IntegrityError:
            # Another worker answered some of these at the same moment: the chunk is redone next run.
            log.warning("apply run %s: chunk raced another worker; it will be resumed", run_id)
            raise
        except LetterError as exc:
            with db.unit_of_work() as s:
                s.execute(update(ApplyRun).where(ApplyRun.id == run_id).values(state="failed", error=str(exc)[:500]))
            raise
        if emails and enqueue_email is not None:
            enqueue_email(emails)
    with db.unit_of_work() as s:
        run = s.get(ApplyRun, run_id)
        if build_print is not None:
            run.print_sha256 = build_print(s, run)
        run.state, run.finished_at = "done", utcnow()
        letter = s.get(FormLetter, s.get(LetterVersion, run.version_id).letter_id)
        letter.usage_count += run.created_count
        letter.last_used_at = utcnow()
        record(s, actor_id=run.created_by_id, action="apply_run.finish", object_type="apply_run", object_id=run.id,
               after={"created": run.created_count, "skipped": run.skipped})
    return run


def store_print_file(session: Session, run: ApplyRun, pdf: bytes) -> str:
    return store_blob(session, pdf, "application/pdf")
