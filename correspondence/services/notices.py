"""In-app notices: a staffer is told about their own work (a letter approved, changes asked for).

A notice belongs to one staffer and nobody else reads it or marks it read. When SMTP is set up, the
boundary queues an email copy after its commit (workers.jobs.run_notice_emails); the notice itself is
the record, so an email that fails loses nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from correspondence.errors import NotFound
from correspondence.models import Notice, Staffer, utcnow
from correspondence.services.audit import record

# An email copy is only worth sending while the news is fresh; older unsent notices stay in the app.
EMAIL_FRESH_FOR = timedelta(hours=24)


def notify(session: Session, staffer_id: int, *, kind: str, text: str, link: str = "",
           actor_id: int | None) -> Notice:
    """Leave a notice for one staffer (audited)."""
    notice = Notice(staffer_id=staffer_id, kind=kind[:40], text=text.strip()[:500], link=link[:500])
    session.add(notice)
    session.flush()
    record(session, actor_id=actor_id, action="notice.create", object_type="notice", object_id=notice.id,
           after={"staffer_id": staffer_id, "kind": notice.kind})
    return notice


def unread_count(session: Session, staffer_id: int) -> int:
    return session.scalar(select(func.count(Notice.id)).where(Notice.staffer_id == staffer_id,
                                                              Notice.read_at.is_(None))) or 0


def notices_for(session: Session, staffer_id: int, *, limit: int = 200) -> list[Notice]:
    """This staffer's own notices, unread first, newest first."""
    return list(session.scalars(select(Notice).where(Notice.staffer_id == staffer_id)
                                .order_by(Notice.read_at.is_not(None), Notice.created_at.desc(), Notice.id.desc())
                                .limit(limit)))


def mark_read(session: Session, notice_id: int, *, actor_id: int) -> Notice:
    """Mark one of the actor's own notices read; another staffer's notice is "not found", never shown."""
    notice = session.get(Notice, notice_id)
    if notice is None or notice.staffer_id != actor_id:
        raise NotFound(f"no notice {notice_id}")
    if notice.read_at is None:
        notice.read_at = utcnow()
        record(session, actor_id=actor_id, action="notice.read", object_type="notice", object_id=notice.id,
               before={"read": False}, after={"read": True})
    return notice


def mark_all_read(session: Session, *, actor_id: int) -> int:
    """Mark every unread notice of the actor read; returns how many."""
    ids = list(session.scalars(select(Notice.id).where(Notice.staffer_id == actor_id, Notice.read_at.is_(None))))
    if ids:
        session.execute(update(Notice).where(Notice.id.in_(ids)).values(read_at=utcnow()))
        record(session, actor_id=actor_id, action="notice.read_all", object_type="staffer", object_id=actor_id,
               after={"notices": len(ids)})
    return len(ids)


def unsent_emails(session: Session, staffer_id: int, now: datetime | None = None) -> list[tuple[Notice, Staffer]]:
    """Notices of an active staffer whose email copy has not gone yet and is still fresh."""
    now = now or utcnow()
    staffer = session.get(Staffer, staffer_id)
    if staffer is None or not staffer.active:
        return []
    found = session.scalars(select(Notice).where(Notice.staffer_id == staffer_id, Notice.emailed_at.is_(None),
                                                 Notice.read_at.is_(None),
                                                 Notice.created_at >= now - EMAIL_FRESH_FOR).order_by(Notice.id))
    return [(n, staffer) for n in found]


def mark_emailed(session: Session, notice_id: int) -> None:
    notice = session.get(Notice, notice_id)
    if notice is not None and notice.emailed_at is None:
        notice.emailed_at = utcnow()
        record(session, actor_id=None, action="notice.email", object_type="notice", object_id=notice.id,
               after={"emailed": True})
