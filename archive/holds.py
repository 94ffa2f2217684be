"""Legal holds: a constituent, a case or a batch kept whole while a hold is in force.

A hold is placed with a reason and released with a reason, both audited; a released hold stays as the
record. Retention skips anything under a hold (and counts it as held); erasure refuses with the hold's
reason. Holds are placed and released by supervisors and admins only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from correspondence.errors import NotFound, PermissionDenied, ValidationFailed
from correspondence.models import Batch, Case, Constituent, LegalHold, Role, Staffer, utcnow
from correspondence.services.audit import record

HOLDABLE = {"constituent": Constituent, "case": Case, "batch": Batch}
HOLDERS = frozenset({Role.ADMIN, Role.SUPERVISOR})
REASON_MAX = 500


@dataclass(frozen=True)
class HeldObjects:
    """The ids under a hold in force, per kind of object: what retention and erasure must leave alone."""

    constituents: frozenset[int]
    cases: frozenset[int]
    batches: frozenset[int]

    @property
    def empty(self) -> bool:
        return not (self.constituents or self.cases or self.batches)


def _holder(session: Session, actor_id: int) -> Staffer:
    actor = session.get(Staffer, actor_id)
    if actor is None or not actor.active or actor.role not in HOLDERS:
        raise PermissionDenied("only a supervisor or an admin may place or release a legal hold")
    return actor


def _reason(text: str, what: str) -> str:
    reason = " ".join((text or "").split())
    if not reason:
        raise ValidationFailed(f"say why the hold is {what} (a case number, a request, a letter)")
    if len(reason) > REASON_MAX:
        raise ValidationFailed(f"the reason is {len(reason)} characters; keep it under {REASON_MAX}")
    return reason


def _check_object(session: Session, object_type: str, object_id: int) -> None:
    model = HOLDABLE.get(object_type)
    if model is None:
        raise ValidationFailed(f"a legal hold goes on a constituent, a case or a batch, not {object_type!r}")
    if session.get(model, object_id) is None:
        raise NotFound(f"no {object_type} {object_id}")


def holds_on(session: Session, object_type: str, object_id: int, *, include_released: bool = False
             ) -> list[LegalHold]:
    """The holds on one object, newest first (only those in force unless include_released)."""
    query = select(LegalHold).where(LegalHold.object_type == object_type, LegalHold.object_id == object_id)
    if not include_released:
        query = query.where(LegalHold.released_at.is_(None))
    return list(session.scalars(query.order_by(LegalHold.placed_at.desc(), LegalHold.id.desc())))


def place_hold(session: Session, object_type: str, object_id: int, *, actor_id: int, reason: str) -> LegalHold:
    """Put a legal hold on a constituent, a case or a batch (audited); a second hold may sit beside the first."""
    _holder(session, actor_id)
    _check_object(session, object_type, object_id)
    hold = LegalHold(object_type=object_type, object_id=object_id, reason=_reason(reason, "placed"),
                     placed_by_id=actor_id, placed_at=utcnow())
    session.add(hold)
    session.flush()
    record(session, actor_id=actor_id, action="legal_hold.place", object_type=object_type, object_id=object_id,
           after={"hold_id": hold.id}, detail=hold.reason)
    return hold


def release_hold(session: Session, hold_id: int, *, actor_id: int, reason: str) -> LegalHold:
    """Release one hold with a reason (audited); the hold's row stays as the record."""
    _holder(session, actor_id)
    hold = session.get(LegalHold, hold_id)
    if hold is None:
        raise NotFound(f"no legal hold {hold_id}")
    if hold.released_at is not None:
        raise ValidationFailed("this hold was already released")
    hold.release_reason = _reason(reason, "released")
    hold.released_at = utcnow()
    hold.released_by_id = actor_id
    session.flush()
    record(session, actor_id=actor_id, action="legal_hold.release", object_type=hold.object_type,
           object_id=hold.object_id, before={"hold_id": hold.id}, detail=hold.release_reason)
    return hold


def held(session: Session) -> HeldObjects:
    """Every object under a hold in force (holds are few: one query, held in memory for a run)."""
    rows = session.execute(select(LegalHold.object_type, LegalHold.object_id)
                           .where(LegalHold.released_at.is_(None))).all()
    by_kind: dict[str, set[int]] = {"constituent": set(), "case": set(), "batch": set()}
    for kind, oid in rows:
        by_kind.setdefault(kind, set()).add(oid)
    return HeldObjects(frozenset(by_kind["constituent"]), frozenset(by_kind["case"]), frozenset(by_kind["batch"]))


def first_hold(session: Session, pairs: Iterable[tuple[str, int]]) -> LegalHold | None:
    """The oldest hold in force on any of these (object type, id) pairs, or None."""
    wanted = list(pairs)
    if not wanted:
        return None
    holds = session.scalars(select(LegalHold).where(LegalHold.released_at.is_(None))
                            .order_by(LegalHold.placed_at, LegalHold.id)).all()
    keys = set(wanted)
    return next((h for h in holds if (h.object_type, h.object_id) in keys), None)
