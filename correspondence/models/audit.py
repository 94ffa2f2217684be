"""The append-only audit log: who did what to which object, before and after."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NoReturn

from sqlalchemy import JSON, Connection, ForeignKey, Index, Integer, String, event
from sqlalchemy.orm import Mapped, Mapper, mapped_column

from correspondence.models.base import Base, UTCDateTime, utcnow


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_object", "object_type", "object_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    # Set while an admin "views as" a staffer: actor_id is the admin, this is the staffer viewed. Also set
    # on a delegated approval decision: actor_id is the delegate, this is the supervisor they decided for.
    on_behalf_of_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    action: Mapped[str] = mapped_column(String(60), index=True)
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    detail: Mapped[str | None] = mapped_column(String(500))


class AuditLogIsAppendOnly(RuntimeError):
    """Raised when code tries to change or delete an audit event."""


@event.listens_for(AuditEvent, "before_update")
def _refuse_update(_mapper: Mapper[Any], _conn: Connection, target: AuditEvent) -> NoReturn:
    raise AuditLogIsAppendOnly(f"audit event {target.id} cannot be changed")


@event.listens_for(AuditEvent, "before_delete")
def _refuse_delete(_mapper: Mapper[Any], _conn: Connection, target: AuditEvent) -> NoReturn:
    raise AuditLogIsAppendOnly(f"audit event {target.id} cannot be deleted")
