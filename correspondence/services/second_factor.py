"""Second factors for sign-in: TOTP (authenticator apps), one-time recovery codes, WebAuthn security keys.

A TOTP secret is stored encrypted with correspondence.secretbox (so a copy of the database alone does
not give the codes away) and counts only once confirmed with a code. Each accepted TOTP code moves
`totp_last_step` forward, so the same code (or an older one) is refused the second time. Recovery
codes are 80 random bits each, shown once and stored as SHA-256: at that entropy a fast hash is
enough, and checking one code costs one indexed lookup rather than ten argon2 runs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import Any, cast

import pyotp
from sqlalchemy import CursorResult, delete, or_, select, update
from sqlalchemy.orm import Session
from webauthn import (
    base64url_to_bytes,
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from correspondence.errors import PermissionDenied, ValidationFailed
from correspondence.models import RecoveryCode, Role, Staffer, WebAuthnCredential, utcnow
from correspondence.secretbox import decrypt, encrypt
from correspondence.services.audit import record
from correspondence.services.staff import (
    SignInPolicy,
    check_sign_in_allowed,
    complete_sign_in,
    end_sessions,
    get_staffer,
    note_attempt,
)

RECOVERY_CODES = 10
TOTP_STEP = 30


# --- TOTP -----------------------------------------------------------------------------------------

def start_totp(session: Session, staffer_id: int, *, secret_key: str) -> str:
    """Give the staffer a new, not yet active TOTP secret (returned in clear, to show once)."""
    staffer = get_staffer(session, staffer_id)
    if staffer.totp_confirmed_at is not None:
        raise ValidationFailed("an authenticator app is already set up; an admin can reset it")
    secret = pyotp.random_base32(32)
    staffer.totp_secret = encrypt(secret_key, secret)
    staffer.totp_last_step = None
    return secret


def pending_totp_secret(staffer: Staffer, *, secret_key: str) -> str | None:
    """The secret being enrolled (started, not yet confirmed), to show its QR code again."""
    if staffer.totp_secret is None or staffer.totp_confirmed_at is not None:
        return None
    return decrypt(secret_key, staffer.totp_secret)


def totp_uri(secret: str, *, email: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


def _accept_totp(session: Session, staffer: Staffer, code: str, *, secret_key: str, now: float | None) -> bool:
    """True when code is valid for the current step (±1 for clock drift) and later than the last one used."""
    code = "".join(code.split())
    if staffer.totp_secret is None or len(code) != 6 or not code.isdigit():
        return False
    totp = pyotp.TOTP(decrypt(secret_key, staffer.totp_secret))
    current = int((time.time() if now is None else now) // TOTP_STEP)
    for step in (current - 1, current, current + 1):
        if not hmac.compare_digest(totp.at(step * TOTP_STEP), code):
            continue
        # Compare-and-set, so two requests racing with the same code cannot both win.
        moved = cast(CursorResult[Any], session.execute(
            update(Staffer).where(Staffer.id == staffer.id,
                                  or_(Staffer.totp_last_step.is_(None), Staffer.totp_last_step < step))
            .values(totp_last_step=step).execution_options(synchronize_session=False)))
        if moved.rowcount != 1:
            return False  # this code (or a later one) was used already: a replay
        session.refresh(staffer, ["totp_last_step"])
        return True
    return False


def confirm_totp(session: Session, staffer_id: int, code: str, *, secret_key: str,
                 now: float | None = None) -> list[str]:
    """Turn TOTP on once the staffer proves their app makes the right codes; returns new recovery codes."""
    staffer = get_staffer(session, staffer_id)
    if staffer.totp_secret is None or staffer.totp_confirmed_at is not None:
        raise ValidationFailed("start setting up an authenticator app first")
    if not _accept_totp(session, staffer, code, secret_key=secret_key, now=now):
        raise ValidationFailed("that code is not right; check the time on your phone and try the next code")
    staffer.totp_confirmed_at = utcnow()
    record(session, actor_id=staffer.id, action="staffer.totp_enabled", object_type="staffer", object_id=staffer.id)
    return _codes_if_none(session, staffer)


# --- recovery codes -------------------------------------------------------------------------------

def _hash_code(code: str) -> str:
    normal = "".join(c for c in code.upper() if c.isalnum())
    return hashlib.sha256(normal.encode()).hexdigest()


def new_recovery_codes(session: Session, staffer_id: int, *, actor_id: int) -> list[str]:
    """Replace the staffer's recovery codes with ten new ones, returned in clear to show once."""
    staffer = get_staffer(session, staffer_id)
    session.execute(delete(RecoveryCode).where(RecoveryCode.staffer_id == staffer.id))
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = base64.b32encode(secrets.token_bytes(10)).decode().lower()  # 80 bits, 16 characters
        codes.append("-".join(raw[i:i + 4] for i in range(0, 16, 4)))
    session.add_all(RecoveryCode(staffer_id=staffer.id, code_hash=_hash_code(c)) for c in codes)
    record(session, actor_id=actor_id, action="staffer.recovery_codes_created", object_type="staffer",
           object_id=staffer.id)
    session.flush()
    return codes


def _codes_if_none(session: Session, staffer: Staffer) -> list[str]:
    unused = session.scalar(select(RecoveryCode.id).where(RecoveryCode.staffer_id == staffer.id,
                                                          RecoveryCode.used_at.is_(None)).limit(1))
    return [] if unused is not None else new_recovery_codes(session, staffer.id, actor_id=staffer.id)


def _use_recovery_code(session: Session, staffer: Staffer, code: str) -> bool:
    moved = cast(CursorResult[Any], session.execute(
        update(RecoveryCode).where(RecoveryCode.staffer_id == staffer.id, RecoveryCode.code_hash == _hash_code(code),
                                   RecoveryCode.used_at.is_(None))
        .values(used_at=utcnow()).execution_options(synchronize_session=False)))
    return moved.rowcount == 1


def unused_recovery_codes(session: Session, staffer_id: int) -> int:
    return len(list(session.scalars(select(RecoveryCode.id).where(
        RecoveryCode.staffer_id == staffer_id, RecoveryCode.used_at.is_(None)))))


# --- the second step of sign-in -------------------------------------------------------------------

def verify_code(session: Session, staffer_id: int, code: str, *, secret_key: str, remote_addr: str | None,
                policy: SignInPolicy, now: float | None = None) -> Staffer:
    """Finish signing in with a TOTP code or a recovery code; wrong codes are throttled like passwords."""
    staffer = get_staffer(session, staffer_id)
    check_sign_in_allowed(session, email=staffer.email, remote_addr=remote_addr, policy=policy)
    code = code.strip()
    if staffer.active and staffer.totp_confirmed_at is not None and _accept_totp(
            session, staffer, code, secret_key=secret_key, now=now):
        return complete_sign_in(session, staffer, remote_addr=remote_addr, method="password + authenticator app")
    if staffer.active and len(code) > 6 and _use_recovery_code(session, staffer, code):
        left = unused_recovery_codes(session, staffer.id)
        record(session, actor_id=staffer.id, action="staffer.recovery_code_used", object_type="staffer",
               object_id=staffer.id, detail=f"{left} left")
        return complete_sign_in(session, staffer, remote_addr=remote_addr, method="password + recovery code")
    note_attempt(session, email=staffer.email, remote_addr=remote_addr, succeeded=False)
    record(session, actor_id=None, action="login.second_factor_failed", object_type="staffer", object_id=staffer.id,
           detail=f"from {remote_addr}" if remote_addr else None)
    raise ValidationFailed("that code is not right (or was used already)")


# --- WebAuthn security keys -----------------------------------------------------------------------

def _descriptors(session: Session, staffer_id: int) -> list[PublicKeyCredentialDescriptor]:
    return [PublicKeyCredentialDescriptor(id=base64url_to_bytes(c)) for c in session.scalars(
        select(WebAuthnCredential.credential_id).where(WebAuthnCredential.staffer_id == staffer_id))]


def registration_options(session: Session, staffer_id: int, *, rp_id: str, rp_name: str) -> tuple[str, bytes]:
    """Options for navigator.credentials.create() (JSON) and the challenge to keep until the answer."""
    staffer = get_staffer(session, staffer_id)
    options = generate_registration_options(
        rp_id=rp_id, rp_name=rp_name, user_name=staffer.email, user_display_name=staffer.name,
        user_id=f"mailroom-staffer-{staffer.id}".encode(),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.DISCOURAGED,
            user_verification=UserVerificationRequirement.PREFERRED),
        exclude_credentials=_descriptors(session, staffer.id))
    return options_to_json(options), options.challenge


def register_security_key(session: Session, staffer_id: int, *, credential: str | dict[str, Any], challenge: bytes,
                          rp_id: str, origin: str, name: str) -> tuple[WebAuthnCredential, list[str]]:
    """Keep a key the browser just created, after checking challenge, origin and RP id."""
    staffer = get_staffer(session, staffer_id)
    try:
        verified = verify_registration_response(credential=credential, expected_challenge=challenge,
                                                expected_rp_id=rp_id, expected_origin=origin)
    except (InvalidRegistrationResponse, ValueError, KeyError, TypeError) as exc:
        raise ValidationFailed(f"the security key could not be registered: {exc}") from exc
    key = WebAuthnCredential(staffer_id=staffer.id, credential_id=bytes_to_base64url(verified.credential_id),
                             public_key=verified.credential_public_key, sign_count=verified.sign_count,
                             name=(name.strip() or "Security key")[:100])
    session.add(key)
    session.flush()
    record(session, actor_id=staffer.id, action="staffer.security_key_added", object_type="staffer",
           object_id=staffer.id, detail=key.name)
    return key, _codes_if_none(session, staffer)


def authentication_options(session: Session, staffer_id: int, *, rp_id: str) -> tuple[str, bytes]:
    keys = _descriptors(session, staffer_id)
    if not keys:
        raise ValidationFailed("no security key is registered for this account")
    options = generate_authentication_options(rp_id=rp_id, allow_credentials=keys,
                                              user_verification=UserVerificationRequirement.PREFERRED)
    return options_to_json(options), options.challenge


def verify_security_key(session: Session, staffer_id: int, *, credential: str | dict[str, Any], challenge: bytes,
                        rp_id: str, origin: str, remote_addr: str | None, policy: SignInPolicy) -> Staffer:
    """Finish signing in with a security key: its signature over our challenge, for our origin."""
    staffer = get_staffer(session, staffer_id)
    check_sign_in_allowed(session, email=staffer.email, remote_addr=remote_addr, policy=policy)
    raw_id = credential.get("id") if isinstance(credential, dict) else None
    key = session.scalar(select(WebAuthnCredential).where(WebAuthnCredential.staffer_id == staffer.id,
                                                          WebAuthnCredential.credential_id == str(raw_id or "")))
    try:
        if key is None or not staffer.active:
            raise InvalidAuthenticationResponse("unknown security key")
        verified = verify_authentication_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=rp_id, expected_origin=origin,
            credential_public_key=key.public_key, credential_current_sign_count=key.sign_count)
    except (InvalidAuthenticationResponse, ValueError, KeyError, TypeError) as exc:
        note_attempt(session, email=staffer.email, remote_addr=remote_addr, succeeded=False)
        record(session, actor_id=None, action="login.second_factor_failed", object_type="staffer",
               object_id=staffer.id, detail=f"security key: {exc}"[:500])
        raise ValidationFailed("the security key was not accepted") from exc
    key.sign_count = verified.new_sign_count
    key.last_used_at = utcnow()
    return complete_sign_in(session, staffer, remote_addr=remote_addr, method="password + security key")


def security_keys(session: Session, staffer_id: int) -> list[WebAuthnCredential]:
    return list(session.scalars(select(WebAuthnCredential).where(WebAuthnCredential.staffer_id == staffer_id)
                                .order_by(WebAuthnCredential.id)))


# --- admin ----------------------------------------------------------------------------------------

def reset_second_factor(session: Session, staffer_id: int, *, actor_id: int | None) -> Staffer:
    """Remove the staffer's app, keys and recovery codes (lost phone); they enrol again at next sign-in.

    Only an active admin may (actor_id None is the shell: `mailroom staff reset-2fa`); checked here, not only
    on the route, because removing a second factor is half of taking over an account.
    """
    if actor_id is not None:
        actor = session.get(Staffer, actor_id)
        if actor is None or not actor.active or actor.role != Role.ADMIN:
            raise PermissionDenied("only an admin may reset a staffer's second factor")
    staffer = get_staffer(session, staffer_id)
    before = {"totp": staffer.totp_confirmed_at is not None, "keys": len(security_keys(session, staffer.id))}
    staffer.totp_secret = None
    staffer.totp_confirmed_at = None
    staffer.totp_last_step = None
    session.execute(delete(WebAuthnCredential).where(WebAuthnCredential.staffer_id == staffer.id))
    session.execute(delete(RecoveryCode).where(RecoveryCode.staffer_id == staffer.id))
    record(session, actor_id=actor_id, action="staffer.second_factor_reset", object_type="staffer",
           object_id=staffer.id, before=before, after={"totp": False, "keys": 0})
    return end_sessions(session, staffer.id, actor_id=actor_id, reason="second factor reset by an admin")
