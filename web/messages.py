"""The message view: clean text beside the original, the constituent's history, and triage actions."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from correspondence.errors import DomainError, NotFound, PermissionDenied
from correspondence.models import AuditEvent, Blob, Channel, MessageStatus, Stance, Topic
from correspondence.models import Response as Answer
from correspondence.services.blobs import load_blob
from correspondence.services.messages import (
    assign_message,
    change_status,
    earlier_messages,
    get_message,
    set_stance,
    set_topic,
)
from correspondence.services.staff import list_staff
from correspondence.states import may_move
from web import db_session
from web.access import ALL_STAFF, roles
from web.forms import ActionForm
from web.inputs import parse_id

bp = Blueprint("messages", __name__, url_prefix="/messages")

# Status moves offered as buttons; assign and quarantine have their own controls.
BUTTON_TARGETS = (MessageStatus.IN_PROGRESS, MessageStatus.AWAITING_APPROVAL, MessageStatus.RESPONDED,
                  MessageStatus.CLOSED, MessageStatus.ARCHIVED, MessageStatus.NEW)


def _original(raw: bytes | None) -> dict[str, object] | None:
    """Headers and attachment list of a raw RFC 822 message, parsed with the modern email policy."""
    if not raw:
        return None
    try:
        parsed = BytesParser(policy=policy.default).parsebytes(raw)
        headers = [(k, str(v)) for k, v in parsed.items()]
        attachments = [
            {"filename": part.get_filename() or "(unnamed)", "type": part.get_content_type(),
             "size": len(part.get_payload(decode=True) or b"")}
            for part in parsed.iter_attachments()
        ] if parsed.is_multipart() else []
    except Exception as exc:  # a raw input we cannot parse is still shown as text
        return {"headers": [], "attachments": [], "error": f"could not parse the original: {exc}"}
    return {"headers": headers, "attachments": attachments, "error": None}


@bp.route("/<int:message_id>")
@roles(*ALL_STAFF)
def view(message_id: int):  # type: ignore[no-untyped-def]
    session = db_session()
    try:
        message = get_message(session, message_id)
    except NotFound:
        abort(404, description=f"There is no message {message_id}.")
    blob = session.get(Blob, message.raw_sha256) if message.raw_sha256 else None
    raw = load_blob(session, blob.sha256) if blob is not None else None
    textual = blob is not None and blob.content_type.split("/")[0] in ("text", "message") or (
        blob is not None and blob.content_type in ("application/xml", "application/json"))
    history = list(session.scalars(
        select(AuditEvent).where(AuditEvent.object_type == "message", AuditEvent.object_id == str(message.id))
        .order_by(AuditEvent.at.desc()).limit(50)))
    topics = list(session.scalars(select(Topic).where(Topic.active.is_(True)).order_by(Topic.name)))
    allowed = [t for t in BUTTON_TARGETS if may_move(message.status, t, current_user.role)]
    answers = list(session.scalars(select(Answer).where(Answer.message_id == message.id)))
    return render_template(
        "message.html", message=message,
        original=_original(raw) if message.channel == Channel.EMAIL else None,
        raw_text=_raw_text(raw) if textual else None, raw_kind=blob.content_type if blob else None,
        earlier=earlier_messages(session, message), history=history, topics=topics,
        topic_names={t.id: t.name for t in topics},
        answers=answers, suggested_letter=_suggested_letter(session, message.id) if not answers else None,
        letters_sent=list(session.scalars(select(Answer).where(
            Answer.constituent_id == message.constituent_id).order_by(Answer.id.desc()).limit(20)))
        if message.constituent_id else [],
        staff=list_staff(session, active_only=True), stances=list(Stance), allowed=allowed,
        form=ActionForm(),
    )


# The message page offers the learnt suggestion only when the history points to it this clearly.
SUGGEST_AT = 0.3


def _suggested_letter(session, message_id: int):  # type: ignore[no-untyped-def]
    from drafting.choose import suggest_for_message

    top = suggest_for_message(session, message_id, k=1)
    return top[0] if top and top[0].score >= SUGGEST_AT else None


def _raw_text(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    return raw[:200_000].decode("utf-8", errors="replace")


@bp.route("/<int:message_id>/<action>", methods=["POST"])
@roles(*ALL_STAFF)
def act(message_id: int, action: str):  # type: ignore[no-untyped-def]
    session = db_session()
    value = request.form.get("value", "")
    try:
        if action == "assign":
            if parse_id(value) is None:
                raise DomainError("choose a staffer to assign to")
            assign_message(session, message_id, parse_id(value), actor_id=current_user.id)
        elif action == "topic":
            set_topic(session, message_id, parse_id(value), actor_id=current_user.id)
        elif action == "stance":
            set_stance(session, message_id, Stance(value) if value else None, actor_id=current_user.id)
        elif action == "status":
            change_status(session, message_id, MessageStatus(value), actor_id=current_user.id)
        else:
            abort(404, description=f"Unknown action {action!r}.")
    except NotFound:
        abort(404, description=f"There is no message {message_id}.")
    except PermissionDenied as exc:
        session.rollback()
        abort(403, description=str(exc))
    except (DomainError, ValueError) as exc:
        session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("messages.view", message_id=message_id)), 303
    session.commit()
    flash("Saved.", "ok")
    return redirect(url_for("messages.view", message_id=message_id)), 303


@bp.route("/<int:message_id>/pages/<int:number>")
@roles(*ALL_STAFF)
def page_image(message_id: int, number: int):  # type: ignore[no-untyped-def]
    """The image of one scanned page, shown beside its OCR text."""
    session = db_session()
    try:
        message = get_message(session, message_id)
    except NotFound:
        abort(404, description=f"There is no message {message_id}.")
    pages = ((message.facts or {}).get("ocr") or {}).get("pages") or []
    if not 1 <= number <= len(pages) or not pages[number - 1].get("image"):
        abort(404, description=f"Message {message_id} has no page image {number}.")
    data = load_blob(session, pages[number - 1]["image"])
    if data is None:
        abort(404, description="The page image is missing.")
    return Response(data, mimetype="image/png", headers={"Cache-Control": "private, max-age=3600"})
