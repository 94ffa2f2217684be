"""Staff API tokens (scoped, expiring, revocable; only a hash is kept) and the API's idempotency keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from correspondence.models.base import Base, UTCDateTime, utcnow
from correspondence.models.staffer import Staffer


class StaffApiToken(Base):
    """A token a program uses to act as one staffer through /api/v1, within a list of scopes.

    Only the token's SHA-256 is stored (the token is 256 random bits, so a slow hash adds nothing);
    the token itself is shown once, when it is made. What it may do is its scopes *and* what its
    staffer's role allows at the moment of each request (correspondence.services.api_tokens).
    """

    __tablename__ = "staff_api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters of the token, shown in lists so a person can tell their tokens apart.
    prefix: Mapped[str] = mapped_column(String(16))
    staffer_id: Mapped[int] = mapped_column(ForeignKey("staffers.id"), index=True)
    scopes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staffers.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    staffer: Mapped[Staffer] = relationship(foreign_keys=[staffer_id])


class ApiIdempotencyKey(Base):
    """A create request's Idempotency-Key and the answer it got, replayed when the key comes again."""

    __tablename__ = "api_idempotency_keys"
    __table_args__ = (UniqueConstraint("token_id", "key", name="uq_api_idempotency_keys_token_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("staff_api_tokens.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    # Method, path and body digest: the same key with a different request is refused, not replayed.
    request_sha256: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
