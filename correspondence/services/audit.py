"""Writing audit events; every state change calls record().

While an admin "views as" a staffer, the web boundary sets `acting_for` for the request: every
event written then names the admin as actor and the staffer as on_behalf_of, whatever actor the
service was given (views pass current_user, which is the staffer being viewed). One place, so no
service or view can forget it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from correspondence.models import AuditEvent, utcnow

# (admin id, viewed staffer id) while an admin views the app as another staffer; else None.
_acting_for: ContextVar[tuple[int, int] | None] = ContextVar("mailroom_acting_for", default=None)


@contextmanager
def acting_for(admin_id: int, staffer_id: int) -> Iterator[None]:
    """Within this block, audit events are the admin's, on behalf of the staffer."""
    token = _acting_for.set((admin_id, staffer_id))
    try:
        yield
    finally:
        _acting_for.reset(token)


def set_acting_for(value: tuple[int, int] | None) -> Token[tuple[int, int] | None]:
    """Set for the rest of a request (the web boundary resets it with the returned token at teardown)."""
    return _acting_for.set(value)


def reset_acting_for(token: Token[tuple[int, int] | None]) -> None:
    _acting_for.reset(token)


def _actor(actor_id: int | None) -> tuple[int | None, int | None]:
    viewing = _acting_for.get()
    return (viewing[0], viewing[1]) if viewing else (actor_id, None)


def record(
    session: Session,
    *,
    actor_id: int | None,
    action: str,
    object_type: str,
    object_id: object,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    detail: str | None = None,
) -> AuditEvent:
    actor_id, on_behalf_of_id = _actor(actor_id)
    event = AuditEvent(
        actor_id=actor_id,
        on_behalf_of_id=on_behalf_of_id,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        before=before,
        after=after,
        detail=detail[:500] if detail else None,
    )
    session.add(event)
    _webhooks(session, action, object_type, [(object_id, before, after)])
    return event


def record_many(session: Session, *, actor_id: int | None, action: str, object_type: str,
                events: list[tuple[object, dict[str, Any] | None]]) -> None:
    """Many events of one kind in one statement (a batch import), each (object id, after)."""
    if not events:
        return
    at = utcnow()
    actor_id, on_behalf_of_id = _actor(actor_id)
    session.execute(insert(AuditEvent), [
        {"at": at, "actor_id": actor_id, "on_behalf_of_id": on_behalf_of_id, "action": action,
         "object_type": object_type, "object_id": str(oid), "before": None, "after": after, "detail": None}
        for oid, after in events])
    _webhooks(session, action, object_type, [(oid, None, after) for oid, after in events])


def _webhooks(session: Session, action: str, object_type: str,
              rows: list[tuple[object, dict[str, Any] | None, dict[str, Any] | None]]) -> None:
    """The few audit actions that are webhook events also write their outbox rows, in the same transaction."""
    from correspondence.services import webhooks  # imported here: webhooks records audit events itself

    if action in webhooks.AUDIT_EVENTS:
        webhooks.emit_for_audit(session, action, object_type, rows)
