"""Staff accounts and their roles."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, Enum, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from correspondence.models.base import Base, UTCDateTime, utcnow


class Role(enum.StrEnum):
    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    CORRESPONDENT = "correspondent"
    CASEWORKER = "caseworker"


# Least privileged first. A correspondent works the mail every role can read, and cannot work a case or read
# its private parts (notes, documents, releases: casework.cases.may_see_private) — the
# office's most sensitive data — so it is the role a new account gets unless someone chooses another.
STAFF_ROLES = (Role.CORRESPONDENT, Role.CASEWORKER, Role.SUPERVISOR, Role.ADMIN)
DEFAULT_ROLE = STAFF_ROLES[0]


class Staffer(Base):
    __tablename__ = "staffers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320), unique=True)
    role: Mapped[Role] = mapped_column(
        Enum(Role, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e],
             create_constraint=True, name="role")
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Bumped to end every session of this staffer: each session stores the epoch it began in.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # TOTP secret encrypted with correspondence.secretbox; active once confirmed with a code.
    totp_secret: Mapped[str | None] = mapped_column(String(255))
    totp_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The last 30-second step a code was accepted for, so the same code cannot be used twice.
    totp_last_step: Mapped[int | None] = mapped_column(Integer)

    # Flask-Login protocol, kept here so the web layer needs no wrapper class.
    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        # The epoch travels with the id (session and remember-me cookie alike), so bumping it
        # signs out every session that began before; see web._load_staffer.
        return f"{self.id}:{self.session_epoch or 0}"

    def __repr__(self) -> str:
        return f"<Staffer {self.id} {self.email} {self.role}>"
