"""Staff accounts: creation, sign-in checks with throttling, roles and passwords."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select
from sqlalchemy.orm import Session

from correspondence.errors import NotFound, PermissionDenied, ValidationFailed
from correspondence.models import LoginAttempt, Role, Staffer, WebAuthnCredential, utcnow
from correspondence.passwords import hash_password, needs_rehash, one_time_password, verify_password
from correspondence.services.audit import record

MIN_PASSWORD_LENGTH = 12


class TooManyAttempts(PermissionDenied):
    """Sign-in is paused for this account or client address after repeated failures."""

    def __init__(self, message: str, retry_after: int = 60) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# RFC 5322 dot-atom local part (RFC 6531 lets it hold any non-ASCII letter too).
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\u0080-\U0010ffff-]+"
_LOCAL_PART = re.compile(rf"{_ATEXT}(\.{_ATEXT})*")
_DOMAIN_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def staff_email(email: str) -> str:
    """A staff address, lower-cased, when its syntax is valid — whatever the domain.

    Deliberately syntax only: special-use and private domains (mailroom.local, *.test, *.example,
    an office's internal name) are accepted, because an office's own addresses need not be
    deliverable from the Internet and the sign-in is by password, not by mail. email-validator
    refuses those names whatever its options, so the rules are written out here (RFC 5321/5322).
    """
    email = email.strip().lower()
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain or len(email) > 320 or len(local) > 64:
        raise ValidationFailed("enter a valid email address (name@domain)")
    if not _LOCAL_PART.fullmatch(local):
        raise ValidationFailed(f"{email[:80]!r} is not a valid email address: the part before @ has a character "
                               "an address cannot have (or two dots in a row)")
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValidationFailed(f"{email[:80]!r} is not a valid email address: the domain is not valid") from None
    labels = ascii_domain.split(".")
    if len(ascii_domain) > 253 or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels):
        raise ValidationFailed(f"{email[:80]!r} is not a valid email address: the domain after @ is not valid")
    return email


def active_staffer(session: Session, staffer_id: int) -> Staffer:
    """The acting staffer, who must exist and be active (a deactivated account acts no more)."""
    staffer = session.get(Staffer, staffer_id)
    if staffer is None or not staffer.active:
        raise PermissionDenied("an active staff account is needed")
    return staffer


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
    email = staff_email(email)
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


@dataclass(frozen=True)
class SignInPolicy:
    """How sign-in slows attackers down: per client address and, with back-off, per account."""

    account_attempts: int = 5  # failures in a row an account allows before it backs off
    address_attempts: int = 20  # failures (any accounts) one address may make per window
    window: timedelta = timedelta(minutes=15)
    backoff_base: timedelta = timedelta(seconds=30)
    backoff_max: timedelta = timedelta(minutes=15)
    # An address this account signed in from lately is "known": only its own failures slow it down.
    known_address_for: timedelta = timedelta(days=30)


def _retry_after(until: datetime, now: datetime) -> int:
    return max(1, math.ceil((until - now).total_seconds()))


def check_sign_in_allowed(session: Session, *, email: str, remote_addr: str | None, policy: SignInPolicy,
                          now: datetime | None = None) -> None:
    """Refuse (TooManyAttempts) before any password hash or code is checked, from counts alone.

    Two limits: a client address that failed too often lately, whichever accounts it tried; and an
    account that failed several times in a row, which then waits 30 s, 1 min, 2 min... up to
    backoff_max after each further failure (it slows down, it does not lock). Failures from other
    addresses do not slow down an address this account recently signed in from, so an attacker
    elsewhere cannot keep the owner out.
    """
    now = now or utcnow()
    email = email.strip().lower()[:320]
    addr = (remote_addr or "")[:64]
    if addr:
        count, oldest = session.execute(
            select(func.count(LoginAttempt.id), func.min(LoginAttempt.at)).where(
                LoginAttempt.remote_addr == addr, LoginAttempt.succeeded.is_(False),
                LoginAttempt.at >= now - policy.window)).one()
        if count >= policy.address_attempts:
            raise TooManyAttempts("too many failed sign-ins from your network; wait a few minutes and try again",
                                  retry_after=_retry_after(oldest + policy.window, now))
    horizon = now - timedelta(days=1)
    last_ok = session.scalar(select(func.max(LoginAttempt.at)).where(
        LoginAttempt.email == email, LoginAttempt.succeeded.is_(True), LoginAttempt.at >= horizon))
    failures = select(func.count(LoginAttempt.id), func.max(LoginAttempt.at)).where(
        LoginAttempt.email == email, LoginAttempt.succeeded.is_(False), LoginAttempt.at > (last_ok or horizon))
    if addr and session.scalar(select(LoginAttempt.id).where(
            LoginAttempt.email == email, LoginAttempt.remote_addr == addr, LoginAttempt.succeeded.is_(True),
            LoginAttempt.at >= now - policy.known_address_for).limit(1)) is not None:
        failures = failures.where(LoginAttempt.remote_addr == addr)
    count, last = session.execute(failures).one()
    if count >= policy.account_attempts and last is not None:
        steps = min(count - policy.account_attempts, 20)
        wait = min(policy.backoff_base * (2 ** steps), policy.backoff_max)
        if last + wait > now:
            raise TooManyAttempts("too many failed sign-ins; wait a few minutes and try again",
                                  retry_after=_retry_after(last + wait, now))


def note_attempt(session: Session, *, email: str, remote_addr: str | None, succeeded: bool) -> None:
    """Keep one password or code check for throttling (kept apart from the audit log, which says who)."""
    session.add(LoginAttempt(email=email.strip().lower()[:320], remote_addr=(remote_addr or "")[:64],
                             succeeded=succeeded, at=utcnow()))


def prune_login_attempts(session: Session, *, older_than: timedelta = timedelta(days=31)) -> int:
    """Forget attempts older than anything the throttle reads (the "known address" look-back is 30 days)."""
    result = cast(CursorResult[Any],
                  session.execute(delete(LoginAttempt).where(LoginAttempt.at < utcnow() - older_than)))
    return result.rowcount or 0


def has_second_factor(session: Session, staffer: Staffer) -> bool:
    if staffer.totp_confirmed_at is not None:
        return True
    return session.scalar(select(WebAuthnCredential.id).where(
        WebAuthnCredential.staffer_id == staffer.id).limit(1)) is not None


def complete_sign_in(session: Session, staffer: Staffer, *, remote_addr: str | None, method: str) -> Staffer:
    """The staffer passed every factor: note the success (it resets the account's back-off) and audit it."""
    note_attempt(session, email=staffer.email, remote_addr=remote_addr, succeeded=True)
    staffer.last_login_at = utcnow()
    record(session, actor_id=staffer.id, action="login.succeeded", object_type="staffer", object_id=staffer.id,
           detail=f"{method} from {remote_addr}" if remote_addr else method)
    return staffer


def authenticate(
    session: Session, *, email: str, password: str, max_attempts: int, window: timedelta,
    remote_addr: str | None = None, policy: SignInPolicy | None = None, read: Session | None = None,
) -> Staffer | None:
    """Return the staffer when the password is right; failures are noted, audited and throttled.

    The throttle is checked first, so a refused attempt costs no argon2 work and leaves no new row.
    With `read` (a session that takes no write lock), the throttle and the password hash are checked
    through it and `session` writes only after: on SQLite argon2's tenth of a second is not spent holding
    the one write lock every request and worker waits for. The throttle is checked again with the lock.
    A staffer with a second factor is not signed in yet: success is noted only when that passes
    (otherwise a known password would reset the back-off that also limits wrong codes).
    """
    policy = policy or SignInPolicy(account_attempts=max_attempts, window=window)
    email = email.strip().lower()
    reader = read or session
    check_sign_in_allowed(reader, email=email, remote_addr=remote_addr, policy=policy)
    checked = reader.scalar(select(Staffer.password_hash).where(Staffer.email == email))
    ok = verify_password(checked, password)
    if read is not None:
        read.rollback()
        # Now with the write lock: attempts noted while the hash was checked count, and a password changed
        # meanwhile is not the one that was checked.
        check_sign_in_allowed(session, email=email, remote_addr=remote_addr, policy=policy)
    staffer = session.scalar(select(Staffer).where(Staffer.email == email))
    ok = ok and staffer is not None and staffer.password_hash == checked
    if not ok or staffer is None or not staffer.active:
        note_attempt(session, email=email, remote_addr=remote_addr, succeeded=False)
        record(session, actor_id=None, action="login.failed", object_type="login",
               object_id=email[:64], detail=f"from {remote_addr}" if remote_addr else None)
        return None
    if needs_rehash(staffer.password_hash):
        staffer.password_hash = hash_password(password)
    if has_second_factor(session, staffer):
        record(session, actor_id=staffer.id, action="login.password_ok", object_type="staffer",
               object_id=staffer.id, detail=f"second factor next, from {remote_addr}" if remote_addr else None)
        return staffer
    return complete_sign_in(session, staffer, remote_addr=remote_addr, method="password")


def end_sessions(session: Session, staffer_id: int, *, actor_id: int | None, reason: str) -> Staffer:
    """End every session of this staffer by bumping the epoch each session carries (audited)."""
    staffer = get_staffer(session, staffer_id)
    staffer.session_epoch = (staffer.session_epoch or 0) + 1
    record(session, actor_id=actor_id, action="staffer.sessions_ended", object_type="staffer",
           object_id=staffer.id, detail=reason)
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
    # Every other session ends; the caller re-stores the new epoch in the session that changed it.
    return end_sessions(session, staffer.id, actor_id=staffer.id, reason="password changed")


def set_role(session: Session, staffer_id: int, role: Role, *, actor_id: int) -> Staffer:
    staffer = get_staffer(session, staffer_id)
    if staffer.id == actor_id and role != Role.ADMIN:
        raise ValidationFailed("you cannot remove your own admin role")
    before = staffer.role.value
    staffer.role = Role(role)
    record(session, actor_id=actor_id, action="staffer.role_changed", object_type="staffer",
           object_id=staffer.id, before={"role": before}, after={"role": staffer.role.value})
    return end_sessions(session, staffer.id, actor_id=actor_id, reason="role changed")


def set_active(session: Session, staffer_id: int, active: bool, *, actor_id: int) -> Staffer:
    staffer = get_staffer(session, staffer_id)
    if staffer.id == actor_id and not active:
        raise ValidationFailed("you cannot deactivate your own account")
    before = staffer.active
    staffer.active = active
    record(session, actor_id=actor_id, action="staffer.activated" if active else "staffer.deactivated",
           object_type="staffer", object_id=staffer.id, before={"active": before}, after={"active": active})
    return end_sessions(session, staffer.id, actor_id=actor_id, reason="deactivated" if not active else "activated")


def reset_password_by_email(session: Session, email: str, *, actor_id: int | None) -> str:
    """reset_password for the account with this address (the `mailroom staff reset-password` command)."""
    staffer_id = session.scalar(select(Staffer.id).where(Staffer.email == email.strip().lower()))
    if staffer_id is None:
        raise NotFound(f"no staff account for {email.strip()[:320]}")
    return reset_password(session, staffer_id, actor_id=actor_id)


def reset_password(session: Session, staffer_id: int, *, actor_id: int | None) -> str:
    """Give the staffer a new one-time password they must change at next sign-in."""
    staffer = get_staffer(session, staffer_id)
    otp = one_time_password()
    staffer.password_hash = hash_password(otp)
    staffer.must_change_password = True
    record(session, actor_id=actor_id, action="staffer.password_reset", object_type="staffer",
           object_id=staffer.id)
    end_sessions(session, staffer.id, actor_id=actor_id, reason="password reset by an admin")
    return otp
