"""API tokens for intake sources: shown once, stored as SHA-256, revocable."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from correspondence.errors import NotFound, ValidationFailed
from correspondence.models import IntakeToken, utcnow
from correspondence.services.audit import record


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, *, name: str, actor_id: int | None) -> tuple[IntakeToken, str]:
    name = name.strip()
    if not name:
        raise ValidationFailed("name the source this token is for (e.g. 'website contact form')")
    plain = "mrt_" + secrets.token_urlsafe(32)
    token = IntakeToken(name=name[:120], token_sha256=_digest(plain), created_by_id=actor_id)
    session.add(token)
    session.flush()
    record(session, actor_id=actor_id, action="intake_token.create", object_type="intake_token",
           object_id=token.id, after={"name": token.name})
    return token, plain


def revoke_token(session: Session, token_id: int, *, actor_id: int) -> IntakeToken:
    token = session.get(IntakeToken, token_id)
    if token is None:
        raise NotFound(f"no token {token_id}")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        record(session, actor_id=actor_id, action="intake_token.revoke", object_type="intake_token",
               object_id=token.id, before={"active": True}, after={"active": False})
    return token


def verify_token(session: Session, plain: str | None) -> IntakeToken | None:
    """The active token matching this secret, or None."""
    if not plain or len(plain) > 200:
        return None
    token = session.scalar(select(IntakeToken).where(IntakeToken.token_sha256 == _digest(plain)))
    if token is None or token.revoked_at is not None:
        return None
    token.last_used_at = utcnow()
    return token


def list_tokens(session: Session) -> list[IntakeToken]:
    return list(session.scalars(select(IntakeToken).order_by(IntakeToken.revoked_at.is_not(None), IntakeToken.name)))
