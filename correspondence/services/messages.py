"""Message triage services: one function per status transition, plus coding topic and stance."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from correspondence.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from correspondence.models import Message, MessageStatus, ResponseMessage, Staffer, Stance, Topic, utcnow
from correspondence.services.audit import record, record_many
from correspondence.states import MESSAGES, can_move

S = MessageStatus


def get_message(session: Session, message_id: int) -> Message:
    message = session.get(Message, message_id)
    if message is None:
        raise NotFound(f"no message {message_id}")
    return message


def check_actor_may_move(session: Session, message: Message, target: S, actor_id: int | None) -> None:
    """Raise PermissionDenied unless the actor may make this move. The system (no actor: intake, jobs)
    may make any allowed move; a move kept for some roles needs an active staffer with one of them.
    Moves open to every staffer look nobody up, so a job started by someone since deactivated finishes."""
    MESSAGES.check_actor(session, message.status, target, actor_id)


def _move(session: Session, message: Message, target: S, *, actor_id: int | None, action: str,
          reason: str | None = None, extra_before: dict[str, Any] | None = None,
          extra_after: dict[str, Any] | None = None) -> Message:
    """Apply one allowed transition, made by someone allowed to make it, and write its audit event."""
    MESSAGES.check(message.status, target)  # both checks before anything changes
    check_actor_may_move(session, message, target, actor_id)
    message.status_reason = reason
    return MESSAGES.move(session, message, target, actor_id=actor_id, action=action, detail=reason,
                         before=extra_before, after=extra_after)


def assign_message(session: Session, message_id: int, assignee_id: int, *, actor_id: int | None) -> Message:
    """Give a message to a staffer; a message already being worked keeps its status."""
    message = get_message(session, message_id)
    assignee = session.get(Staffer, assignee_id)
    if assignee is None or not assignee.active:
        raise ValidationFailed("choose an active staffer to assign to")
    before = {"assignee_id": message.assignee_id}
    target = message.status if message.status in (S.IN_PROGRESS,) else S.ASSIGNED
    if message.status == target and message.assignee_id == assignee_id:
        return message  # already theirs: assigning again changes nothing and is not an event
    message.assignee_id = assignee_id
    return _move(session, message, target, actor_id=actor_id, action="message.assign",
                 extra_before=before, extra_after={"assignee_id": assignee_id})


def unassign_message(session: Session, message_id: int, *, actor_id: int | None) -> Message:
    message = get_message(session, message_id)
    before = {"assignee_id": message.assignee_id}
    message.assignee_id = None
    return _move(session, message, S.NEW, actor_id=actor_id, action="message.unassign",
                 extra_before=before, extra_after={"assignee_id": None})


def start_work(session: Session, message_id: int, *, actor_id: int | None) -> Message:
    message = get_message(session, message_id)
    if message.assignee_id is None:
        raise ValidationFailed("assign the message before starting work on it")
    return _move(session, message, S.IN_PROGRESS, actor_id=actor_id, action="message.start")


def submit_for_approval(session: Session, message_id: int, *, actor_id: int | None) -> Message:
    return _move(session, get_message(session, message_id), S.AWAITING_APPROVAL, actor_id=actor_id,
                 action="message.submit_for_approval")


def mark_responded(session: Session, message_id: int, *, actor_id: int | None) -> Message:
    return _move(session, get_message(session, message_id), S.RESPONDED, actor_id=actor_id,
                 action="message.responded")


def queue_answer(session: Session, message: Message, *, actor_id: int | None, response_id: int) -> Message:
    """A letter answering this message is made and waits to leave."""
    return _move(session, message, S.ANSWER_QUEUED, actor_id=actor_id, action="message.answer_queued",
                 extra_after={"response_id": response_id})


def queue_answers(session: Session, answered: list[tuple[int, S, int]], *, actor_id: int | None) -> None:
    """Many messages (id, current status, response id) answered by letters just made, in one UPDATE and one
    INSERT of audit events (apply to all makes tens of thousands). The caller has checked each status may
    move to ANSWER_QUEUED (``correspondence.states.ANSWERABLE``); the UPDATE checks again."""
    if not answered:
        return
    allowed = [status for status in S if can_move(status, S.ANSWER_QUEUED)]
    for chunk in (answered[i:i + 500] for i in range(0, len(answered), 500)):
        session.execute(update(Message).where(Message.id.in_([m for m, _s, _r in chunk]), Message.status.in_(allowed))
                        .values(status=S.ANSWER_QUEUED, status_reason=None, updated_at=utcnow())
                        .execution_options(synchronize_session=False))
    record_many(session, actor_id=actor_id, action="message.answer_queued", object_type="message",
                events=[(m, {"status": S.ANSWER_QUEUED.value, "from": before.value, "response_id": r})
                        for m, before, r in answered])


def answers_left(session: Session, response_ids: list[int], *, actor_id: int | None = None,
                 how: str) -> int:
    """The letters have left (the server took the email, the print file is made): every message they
    answer that is still answer-queued becomes responded. One UPDATE and one INSERT of audit events,
    whatever the number of messages, so the send path stays one statement per letter."""
    if not response_ids:
        return 0
    moved = list(session.execute(
        update(Message)
        .where(Message.id.in_(select(ResponseMessage.message_id).where(ResponseMessage.response_id.in_(response_ids))),
               # Through a function, so SQLite finds the rows by id: on the bare column it would walk the
               # status index over every answer-queued message (50,000 in a big run) for each letter sent.
               func.coalesce(Message.status, Message.status) == S.ANSWER_QUEUED)
        .values(status=S.RESPONDED, status_reason=None, updated_at=utcnow())
        .returning(Message.id)
        .execution_options(synchronize_session=False)).scalars())
    record_many(session, actor_id=actor_id, action="message.responded", object_type="message",
                events=[(message_id, {"status": S.RESPONDED.value, "from": S.ANSWER_QUEUED.value, "how": how})
                        for message_id in moved])
    return len(moved)


def close_message(session: Session, message_id: int, *, actor_id: int | None,
                  reason: str | None = None) -> Message:
    return _move(session, get_message(session, message_id), S.CLOSED, actor_id=actor_id,
                 action="message.close", reason=reason)


def reopen_message(session: Session, message_id: int, *, actor_id: int | None) -> Message:
    message = get_message(session, message_id)
    if message.assignee_id is None:
        raise ValidationFailed("assign the message before reopening it")
    return _move(session, message, S.IN_PROGRESS, actor_id=actor_id, action="message.reopen")


def quarantine_message(session: Session, message_id: int, *, reason: str, actor_id: int | None) -> Message:
    if not reason.strip():
        raise ValidationFailed("a quarantined message needs a reason a person can act on")
    return _move(session, get_message(session, message_id), S.QUARANTINED, actor_id=actor_id,
                 action="message.quarantine", reason=reason)


def release_message(session: Session, message_id: int, *, actor_id: int | None) -> Message:
    """Return a quarantined (or archived) message to the inbox as new."""
    message = get_message(session, message_id)
    message.assignee_id = None
    return _move(session, message, S.NEW, actor_id=actor_id, action="message.release")


def retry_message(session: Session, message_id: int, *, actor_id: int | None) -> Message:
    """Send a quarantined message through processing again (after a fix or a setting change)."""
    message = get_message(session, message_id)
    if message.status != S.QUARANTINED:
        raise ValidationFailed("only quarantined messages can be retried")
    message.assignee_id = None
    message.processed_at = None
    return _move(session, message, S.NEW, actor_id=actor_id, action="message.retry")


def list_quarantined(session: Session, limit: int = 200) -> list[Message]:
    return list(session.scalars(select(Message).where(Message.status == S.QUARANTINED)
                                .order_by(Message.received_at.desc(), Message.id.desc()).limit(limit)))


def archive_message(session: Session, message_id: int, *, actor_id: int | None) -> Message:
    return _move(session, get_message(session, message_id), S.ARCHIVED, actor_id=actor_id,
                 action="message.archive")


# The transitions a person can choose from the message view, by target status.
TRANSITION_SERVICES = {
    S.IN_PROGRESS: start_work,
    S.AWAITING_APPROVAL: submit_for_approval,
    S.RESPONDED: mark_responded,
    S.CLOSED: close_message,
    S.ARCHIVED: archive_message,
    S.NEW: release_message,
}


def change_status(session: Session, message_id: int, target: S, *, actor_id: int | None) -> Message:
    """Move a message to a chosen status through that transition's own service."""
    message = get_message(session, message_id)
    if target == S.IN_PROGRESS and message.status in (S.CLOSED, S.RESPONDED, S.ANSWER_QUEUED):
        return reopen_message(session, message_id, actor_id=actor_id)
    service = TRANSITION_SERVICES.get(target)
    if service is None:
        raise ValidationFailed(f"use assign or quarantine to move a message to {target.value}")
    return service(session, message_id, actor_id=actor_id)


def set_topic(session: Session, message_id: int, topic_id: int | None, *, actor_id: int | None,
              source: str = "staff") -> Message:
    message = get_message(session, message_id)
    if topic_id is not None and session.get(Topic, topic_id) is None:
        raise ValidationFailed(f"no topic {topic_id}")
    if message.topic_id == topic_id:
        if topic_id is not None and message.topic_source == "model" and source == "staff":
            message.topic_source = "staff"  # a person confirmed the model's choice: now it teaches the next one
        return message
    before = message.topic_id
    message.topic_id = topic_id
    message.topic_source = source if topic_id is not None else None
    record(session, actor_id=actor_id, action="message.set_topic", object_type="message",
           object_id=message.id, before={"topic_id": before}, after={"topic_id": topic_id, "source": source})
    return message


def accept_suggestion(session: Session, message_id: int, *, actor_id: int | None) -> Message:
    """A person takes the model's first topic (and its stance, when the message has none) for this message."""
    message = get_message(session, message_id)
    suggestion = message.suggestions or {}
    if message.topic_id is not None and message.topic_source != "model":
        raise ValidationFailed("it is coded already")
    if not suggestion.get("topics"):
        raise ValidationFailed("there is no suggestion for it yet")
    set_topic(session, message.id, int(suggestion["topics"][0][0]), actor_id=actor_id, source="staff")
    if message.stance is None and suggestion.get("stance"):
        set_stance(session, message.id, Stance(suggestion["stance"][0]), actor_id=actor_id)
    return message


def set_stance(session: Session, message_id: int, stance: Stance | None, *,
               actor_id: int | None) -> Message:
    message = get_message(session, message_id)
    if message.stance == stance:
        return message
    before = message.stance.value if message.stance else None
    message.stance = stance
    record(session, actor_id=actor_id, action="message.set_stance", object_type="message",
           object_id=message.id, before={"stance": before},
           after={"stance": stance.value if stance else None})
    return message


BULK_ACTIONS = ("assign", "topic", "stance", "close", "accept_suggestion")


def bulk_apply(session: Session, message_ids: Iterable[int], action: str, value: str | None, *,
               actor_id: int) -> tuple[int, list[str]]:
    """Apply one triage action to many messages; returns (changed, problems) without stopping early."""
    if action not in BULK_ACTIONS:
        raise ValidationFailed(f"unknown bulk action {action!r}")
    ids = sorted(set(message_ids))
    if not ids:
        raise ValidationFailed("select at least one message")
    if len(ids) > 500:
        raise ValidationFailed("select at most 500 messages at a time")
    changed, problems = 0, []
    for message_id in ids:
        try:
            with session.begin_nested():
                if action == "assign" and value == "none":  # "— nobody —": take it back off whoever has it
                    if get_message(session, message_id).assignee_id is not None:
                        unassign_message(session, message_id, actor_id=actor_id)
                elif action == "assign":
                    assign_message(session, message_id, _int(value, "staffer"), actor_id=actor_id)
                elif action == "topic":
                    set_topic(session, message_id, _int(value, "topic") if value else None,
                              actor_id=actor_id)
                elif action == "stance":
                    set_stance(session, message_id, Stance(value) if value else None, actor_id=actor_id)
                elif action == "accept_suggestion":
                    accept_suggestion(session, message_id, actor_id=actor_id)
                else:
                    close_message(session, message_id, actor_id=actor_id)
            changed += 1
        except (ValidationFailed, NotFound, InvalidTransition, PermissionDenied, ValueError) as exc:
            # One message that cannot take the action is reported; the rest still go on.
            problems.append(f"message {message_id}: {exc}")
    return changed, problems


def _int(value: str | None, what: str) -> int:
    try:
        return int(value or "")
    except ValueError as exc:
        raise ValidationFailed(f"choose a {what}") from exc


def earlier_messages(session: Session, message: Message, limit: int = 20) -> list[Message]:
    if message.constituent_id is None:
        return []
    return list(session.scalars(
        select(Message)
        .where(Message.constituent_id == message.constituent_id, Message.id != message.id)
        .order_by(Message.received_at.desc())
        .limit(limit)
    ))
