"""Writing audit events; every state change calls record()."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from correspondence.models import AuditEvent, utcnow


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
    event = AuditEvent(
        actor_id=actor_id,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        before=before,
        after=after,
        detail=detail[:500] if detail else None,
    )
    session.add(event)
    return event


def record_many(session: Session, *, actor_id: int | None, action: str, object_type: str,
                events: list[tuple[object, dict[str, Any] | None]]) -> None:
    """Many events of one kind in one statement (a batch import), each (object id, after)."""
    if not events:
        return
    at = utcnow()
    session.execute(insert(AuditEvent), [
        {"at": at, "actor_id": actor_id, "action": action, "object_type": object_type, "object_id": str(oid),
         "before": None, "after": after, "detail": None} for oid, after in events])
