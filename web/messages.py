"""The message view: clean text beside the original, the constituent's history, and triage actions."""

from __future__ import annotations

from collections.abc import Callable
from email import policy
from email.parser import BytesParser
from urllib.parse import parse_qsl, urlencode

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from correspondence.errors import DomainError, NotFound, PermissionDenied, ValidationFailed
from correspondence.models import Blob, Channel, MessageStatus, ResponseMessage, Stance, Topic
from correspondence.models import Response as Answer
from correspondence.services.blobs import load_blob
from correspondence.services.history import history_of
from correspondence.services.inbox import InboxFilter, neighbours, triage
from correspondence.services.messages import (
    accept_suggestion,
    assign_message,
    change_status,
    earlier_messages,
    get_message,
    set_stance,
    set_topic,
    unassign_message,
)
from correspondence.services.staff import list_staff
from correspondence.states import may_move
from web import db_session
from web.access import ALL_STAFF, roles
from web.forms import ActionForm
from web.inbox import list_args, parse_filter, remember_undo, take_undo
from web.inputs import optional_enum, optional_id, required_enum, required_id

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
def view(message_id: int):
    session = db_session()
    message = get_message(session, message_id)
    blob = session.get(Blob, message.raw_sha256) if message.raw_sha256 else None
    raw = load_blob(session, blob.sha256) if blob is not None else None
    textual = blob is not None and blob.content_type.split("/")[0] in ("text", "message") or (
        blob is not None and blob.content_type in ("application/xml", "application/json"))
    topics = list(session.scalars(select(Topic).where(Topic.active.is_(True)).order_by(Topic.name)))
    allowed = [t for t in BUTTON_TARGETS if may_move(message.status, t, current_user.role)]
    # The letter that answered it: one letter per person covers all of their messages in a run.
    answers = list(session.scalars(select(Answer).where(or_(
        Answer.message_id == message.id,
        Answer.id.in_(select(ResponseMessage.response_id).where(ResponseMessage.message_id == message.id))))))
    context = list_args(request.args)
    previous_id, next_id = neighbours(session, _list_filter(context), message)
    return render_template(
        "message.html", message=message, list_query=urlencode(context), list_url=_list_url(context),
        previous_url=url_for("messages.view", message_id=previous_id, **context) if previous_id else None,
        next_url=url_for("messages.view", message_id=next_id, **context) if next_id else None,
        undo=take_undo(),
        original=_original(raw) if message.channel == Channel.EMAIL else None,
        raw_text=_raw_text(raw) if textual else None, raw_kind=blob.content_type if blob else None,
        earlier=earlier_messages(session, message), history=history_of(session, "message", message.id),
        topics=topics,
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


def _suggested_letter(session, message_id: int):
    from drafting.choose import suggest_for_message

    top = suggest_for_message(session, message_id, k=1)
    return top[0] if top and top[0].score >= SUGGEST_AT else None


def _list_filter(context: dict[str, str]) -> InboxFilter:
    """The inbox list the staffer came from (its filter and sort ride along in the URL); the open inbox if none."""
    try:
        return parse_filter(MultiDict(context), current_user.id)
    except ValidationFailed:
        return parse_filter(MultiDict(), current_user.id)


def _list_url(context: dict[str, str]) -> str:
    return url_for("inbox.index") + ("?" + urlencode(context) if context else "")


def _raw_text(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    return raw[:200_000].decode("utf-8", errors="replace")


def _act(message_id: int, change: Callable[[Session], object], *, closes: bool = False):
    """One triage action on a message: saved (then the same message, or the next in the staffer's list),
    or refused with the reason; a refusal of the staffer's role is a 403."""
    session = db_session()
    # The list the staffer is working through comes back with every form, so "next" means next in it.
    context = list_args(MultiDict(parse_qsl(request.form.get("list", ""))))
    here = url_for("messages.view", message_id=message_id, **context)
    try:
        change(session)
    except PermissionDenied as exc:
        abort(403, description=str(exc))  # the error handler rolls back
    except NotFound:
        raise  # the 404 handler rolls back
    except DomainError as exc:
        flash(str(exc), "error")
        return redirect(here), 303  # nothing was committed: the request's teardown discards it
    session.commit()
    if closes:
        flash("Closed.", "ok")
        remember_undo([message_id])
    else:
        flash("Saved.", "ok")
    if request.form.get("go") == "next":
        message = get_message(session, message_id)
        _previous, next_id = neighbours(session, _list_filter(context), message)
        if next_id is None:
            flash("That was the last message in this list.", "ok")
            return redirect(_list_url(context)), 303
        return redirect(url_for("messages.view", message_id=next_id, **context)), 303
    return redirect(here), 303


@bp.route("/<int:message_id>/assign", methods=["POST"])
@roles(*ALL_STAFF)
def assign(message_id: int):
    def change(session: Session) -> object:
        value = request.form.get("value", "")
        if value == "none":
            return unassign_message(session, message_id, actor_id=current_user.id)
        staffer_id = required_id(value, "staffer", missing="choose a staffer to assign to")
        return assign_message(session, message_id, staffer_id, actor_id=current_user.id)

    return _act(message_id, change)


@bp.route("/<int:message_id>/triage", methods=["POST"])
@roles(*ALL_STAFF)
def triage_message(message_id: int):
    def change(session: Session) -> object:
        form = request.form
        return triage(session, message_id, topic_id=optional_id(form.get("topic"), "topic"),
                      stance=optional_enum(Stance, form.get("stance"), "stance"),
                      assignee_id=optional_id(form.get("assignee"), "staffer"), actor_id=current_user.id)

    return _act(message_id, change)


@bp.route("/<int:message_id>/accept_suggestion", methods=["POST"])
@roles(*ALL_STAFF)
def accept_topic_suggestion(message_id: int):
    return _act(message_id, lambda session: accept_suggestion(session, message_id, actor_id=current_user.id))


@bp.route("/<int:message_id>/topic", methods=["POST"])
@roles(*ALL_STAFF)
def topic(message_id: int):
    return _act(message_id, lambda session: set_topic(
        session, message_id, optional_id(request.form.get("value"), "topic"), actor_id=current_user.id))


@bp.route("/<int:message_id>/stance", methods=["POST"])
@roles(*ALL_STAFF)
def stance(message_id: int):
    return _act(message_id, lambda session: set_stance(
        session, message_id, optional_enum(Stance, request.form.get("value"), "stance"), actor_id=current_user.id))


@bp.route("/<int:message_id>/status", methods=["POST"])
@roles(*ALL_STAFF)
def status(message_id: int):
    target = request.form.get("value", "")
    return _act(message_id, lambda session: change_status(
        session, message_id, required_enum(MessageStatus, target, "status", missing="choose a status"),
        actor_id=current_user.id), closes=target == MessageStatus.CLOSED.value)


@bp.route("/<int:message_id>/pages/<int:number>")
@roles(*ALL_STAFF)
def page_image(message_id: int, number: int):
    """The image of one scanned page, shown beside its OCR text."""
    session = db_session()
    message = get_message(session, message_id)
    pages = ((message.facts or {}).get("ocr") or {}).get("pages") or []
    if not 1 <= number <= len(pages) or not pages[number - 1].get("image"):
        abort(404, description=f"Message {message_id} has no page image {number}.")
    data = load_blob(session, pages[number - 1]["image"])
    if data is None:
        abort(404, description="The page image is missing.")
    return Response(data, mimetype="image/png", headers={"Cache-Control": "private, max-age=3600"})
