"""Approval delegation: a supervisor away lends their approval to a colleague for a date range.

During the range the delegate may approve or request changes (never on their own version) and sees
the approval queue; every decision they make is audited as made on behalf of the supervisor.

Who may be a delegate: an active correspondent or caseworker (DELEGATE_ROLES). Supervisors and
admins approve already, so a delegation to them would change nothing and is refused. Mailroom has
no read-only role today; should one be added it stays out of DELEGATE_ROLES, deny by default.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from correspondence.errors import NotFound, PermissionDenied, ValidationFailed
from correspondence.models import ApprovalDelegation, Role, Staffer, utcnow
from correspondence.services.audit import record

APPROVERS = (Role.SUPERVISOR, Role.ADMIN)
DELEGATE_ROLES = frozenset({Role.CORRESPONDENT, Role.CASEWORKER})
LONGEST = timedelta(days=92)  # a leave, not a promotion: longer needs a role change by an admin


def _approver(session: Session, staffer_id: int) -> Staffer:
    staffer = session.get(Staffer, staffer_id)
    if staffer is None or not staffer.active or staffer.role not in APPROVERS:
        raise PermissionDenied("only a supervisor or an admin delegates approval")
    return staffer


def delegate_approval(session: Session, *, delegate_id: int, starts_at: datetime, ends_at: datetime,
                      actor_id: int, now: datetime | None = None) -> ApprovalDelegation:
    """The actor (a supervisor or admin) lends their approval to delegate_id from starts_at until ends_at."""
    now = now or utcnow()
    supervisor = _approver(session, actor_id)
    delegate = session.get(Staffer, delegate_id)
    if delegate is None or not delegate.active:
        raise ValidationFailed("choose an active staffer to approve while you are away")
    if delegate.role in APPROVERS:
        raise ValidationFailed(f"{delegate.name} approves letters already; choose a correspondent or caseworker")
    if delegate.role not in DELEGATE_ROLES:
        raise ValidationFailed(f"a {delegate.role.value} cannot be given approval")
    if ends_at <= starts_at:
        raise ValidationFailed("the last day must be on or after the first day")
    if ends_at <= now:
        raise ValidationFailed("that range is already over")
    if ends_at - starts_at > LONGEST:
        raise ValidationFailed(f"a delegation lasts at most {LONGEST.days} days")
    overlapping = session.scalar(select(ApprovalDelegation.id).where(
        ApprovalDelegation.supervisor_id == supervisor.id, ApprovalDelegation.delegate_id == delegate.id,
        ApprovalDelegation.ended_at.is_(None), ApprovalDelegation.starts_at < ends_at,
        ApprovalDelegation.ends_at > starts_at).limit(1))
    if overlapping is not None:
        raise ValidationFailed(f"{delegate.name} already approves for you in part of that range; end that first")
    delegation = ApprovalDelegation(supervisor_id=supervisor.id, delegate_id=delegate.id, starts_at=starts_at,
                                    ends_at=ends_at, created_by_id=actor_id)
    session.add(delegation)
    session.flush()
    record(session, actor_id=actor_id, action="approval_delegation.create", object_type="approval_delegation",
           object_id=delegation.id, after={"supervisor_id": supervisor.id, "delegate_id": delegate.id,
                                           "starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat()},
           detail=f"{delegate.name} approves on behalf of {supervisor.name}")
    return delegation


def end_delegation(session: Session, delegation_id: int, *, actor_id: int) -> ApprovalDelegation:
    """End a delegation now (the supervisor who gave it, or an admin)."""
    actor = _approver(session, actor_id)
    delegation = session.get(ApprovalDelegation, delegation_id)
    if delegation is None:
        raise NotFound(f"no delegation {delegation_id}")
    if delegation.supervisor_id != actor.id and actor.role != Role.ADMIN:
        raise PermissionDenied("only the supervisor who gave it (or an admin) ends a delegation")
    if delegation.ended_at is None:
        delegation.ended_at, delegation.ended_by_id = utcnow(), actor_id
        record(session, actor_id=actor_id, action="approval_delegation.end", object_type="approval_delegation",
               object_id=delegation.id, before={"ended": False}, after={"ended": True})
    return delegation


def active_delegation(session: Session, staffer_id: int, now: datetime | None = None) -> ApprovalDelegation | None:
    """The delegation that lets this staffer approve right now, if any.

    It lapses with the supervisor: one deactivated, or no longer a supervisor or admin, lends nothing.
    """
    now = now or utcnow()
    query = (select(ApprovalDelegation).join(Staffer, Staffer.id == ApprovalDelegation.supervisor_id)
             .where(ApprovalDelegation.delegate_id == staffer_id, ApprovalDelegation.ended_at.is_(None),
                    ApprovalDelegation.starts_at <= now, ApprovalDelegation.ends_at > now,
                    Staffer.active.is_(True), Staffer.role.in_(APPROVERS))
             .order_by(ApprovalDelegation.id).limit(1))
    return session.scalar(query)


def current_delegations(session: Session, now: datetime | None = None) -> list[ApprovalDelegation]:
    """Delegations running now or still to come, soonest first (for the approvals page)."""
    now = now or utcnow()
    return list(session.scalars(select(ApprovalDelegation).where(ApprovalDelegation.ended_at.is_(None),
                                                                 ApprovalDelegation.ends_at > now)
                                .order_by(ApprovalDelegation.starts_at, ApprovalDelegation.id)))


def delegate_candidates(session: Session) -> list[Staffer]:
    return list(session.scalars(select(Staffer).where(Staffer.active.is_(True), Staffer.role.in_(DELEGATE_ROLES))
                                .order_by(Staffer.name)))
