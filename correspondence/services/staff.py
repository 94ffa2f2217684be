"""Staff accounts: creation, sign-in checks with throttling, roles and passwords."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from correspondence.errors import NotFound, PermissionDenied, ValidationFailed
from correspondence.models import AuditEvent, Role, Staffer, utcnow
from correspondence.passwords import hash_password, needs_rehash, one_time_password, verify_password
from correspondence.services.audit import record

MIN_PASSWORD_LENGTH = 12


class TooManyAttempts(PermissionDenied):
    """Sign-in is paused for this account after repeated failures."""


def _normalise_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or len(email) > 320:
        raise ValidationFailed("enter a valid email address")
    return email


def get_staffer(session: Session, staffer_id: int) -> Staffer:
    staffer = session.get(Staffer, staffer_id)
    if staffer is None:
        raise NotFound(f"no staffer {staffer_id}")
    return staffer


def list_staff(session: Session, *, active_only: bool = False) -> list[Staffer]:
    query = select(Staffer).order_by(Staffer.name)
    if active_only:
        query = query.where(Staffer.active.is_(True))
    return list(session.scalars(query))


def create_staffer(
    session: Session, *, name: str, email: str, role: Role, actor_id: int | None,
    password: str | None = None,
) -> tuple[Staffer, str | None]:
    """Create an account; without a password, return a one-time password the staffer must change."""
    email = _normalise_email(email)
    if not name.strip():
        raise ValidationFailed("enter the staffer's name")
    if session.scalar(select(Staffer.id).where(Staffer.email == email)) is not None:
        raise ValidationFailed(f"an account for {email} already exists")
    otp = None
    if password is None:
        otp = password = one_time_password()
    elif len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(f"passwords must be at least {MIN_PASSWORD_LENGTH} characters")
    staffer = Staffer(name=name.strip(), email=email, role=Role(role), active=True,
                      password_hash=hash_password(password), must_change_password=otp is not None)
    session.add(staffer)
    session.flush()
    record(session, actor_id=actor_id, action="staffer.create", object_type="staffer",
           object_id=staffer.id, after={"email": email, "role": staffer.role.value})
    return staffer, otp


def recent_failures(session: Session, email: str, window: timedelta) -> int:
    since = utcnow() - window
    return session.scalar(
        select(func.count(AuditEvent.id)).where(
            AuditEvent.action == "login.failed",
            AuditEvent.object_type == "login",
            AuditEvent.object_id == email[:64],
            AuditEvent.at >= since,
        )
    ) or 0


def authenticate(
    session: Session, *, email: str, password: str, max_attempts: int, window: timedelta,
    remote_addr: str | None = None,
) -> Staffer | None:
    """Return the staffer when the password is right; failures are audited and throttled."""
    email = email.strip().lower()
    if recent_failures(session, email, window) >= max_attempts:
        raise TooManyAttempts("too many failed sign-ins; wait a few minutes and try again")
    staffer = session.scalar(select(Staffer).where(Staffer.email == email))
    ok = verify_password(staffer.password_hash if staffer else None, password)
    if not ok or staffer is None or not staffer.active:
        record(session, actor_id=None, action="login.failed", object_type="login",
               object_id=email[:64], detail=f"from {remote_addr}" if remote_addr else None)
        return None
    if needs_rehash(staffer.password_hash):
        staffer.password_hash = hash_password(password)
    staffer.last_login_at = utcnow()
    record(session, actor_id=staffer.id, action="login.succeeded", object_type="staffer",
           object_id=staffer.id, detail=f"from {remote_addr}" if remote_addr else None)
    return staffer


def change_password(session: Session, staffer_id: int, *, current: str, new: str) -> Staffer:
    staffer = get_staffer(session, staffer_id)
    if not verify_password(staffer.password_hash, current):
        raise ValidationFailed("the current password is not right")
    if len(new) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(f"passwords must be at least {MIN_PASSWORD_LENGTH} characters")
    if new == current:
        raise ValidationFailed("choose a password different from the current one")
    staffer.password_hash = hash_password(new)
    staffer.must_change_password = False
    record(session, actor_id=staffer.id, action="staffer.password_changed", object_type="staffer",
           object_id=staffer.id)
    return staffer


def set_role(session: Session, staffer_id: int, role: Role, *, actor_id: int) -> Staffer:
    staffer = get_staffer(session, staffer_id)
    if staffer.id == actor_id and role != Role.ADMIN:
        raise ValidationFailed("you cannot remove your own admin role")
    before = staffer.role.value
    staffer.role = Role(role)
    record(session, actor_id=actor_id, action="staffer.role_changed", object_type="staffer",
           object_id=staffer.id, before={"role": before}, after={"role": staffer.role.value})
    return staffer


def set_active(session: Session, staffer_id: int, active: bool, *, actor_id: int) -> Staffer:
    staffer = get_staffer(session, staffer_id)
    if staffer.id == actor_id and not active:
        raise ValidationFailed("you cannot deactivate your own account")
    before = staffer.active
    staffer.active = active
    record(session, actor_id=actor_id, action="staffer.activated" if active else "staffer.deactivated",
           object_type="staffer", object_id=staffer.id, before={"active": before}, after={"active": active})
    return staffer


def reset_password(session: Session, staffer_id: int, *, actor_id: int) -> str:
    """Give the staffer a new one-time password they must change at next sign-in."""
    staffer = get_staffer(session, staffer_id)
    otp = one_time_password()
    staffer.password_hash = hash_password(otp)
    staffer.must_change_password = True
    record(session, actor_id=actor_id, action="staffer.password_reset", object_type="staffer",
           object_id=staffer.id)
    return otp
