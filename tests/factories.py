"""Test data factories with sequences; they add and flush, the test decides when to commit."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from correspondence.models import (
    Channel,
    Constituent,
    ConstituentEmail,
    DistrictStatus,
    Message,
    MessageStatus,
    Role,
    Staffer,
)
from correspondence.passwords import hash_password

_seq = itertools.count(1)
_HASH: dict[str, str] = {}


class Factory:
    PASSWORD = "correct horse battery staple"

    def __init__(self, session: Session) -> None:
        self.session = session

    def staffer(self, role: str | Role = Role.CORRESPONDENT, **kw: object) -> Staffer:
        n = next(_seq)
        if self.PASSWORD not in _HASH:  # argon2 is slow on purpose; hash the shared password once
            _HASH[self.PASSWORD] = hash_password(self.PASSWORD)
        values: dict[str, object] = {"name": f"Staffer {n}", "email": f"staffer{n}@example.org",
                                     "role": Role(role), "active": True, "password_hash": _HASH[self.PASSWORD]}
        values.update(kw)
        staffer = Staffer(**values)
        self.session.add(staffer)
        self.session.flush()
        return staffer

    def constituent(self, **kw: object) -> Constituent:
        n = next(_seq)
        email = kw.pop("email", f"person{n}@example.net")
        values: dict[str, object] = {"first_name": "Pat", "last_name": f"Lopez{n}", "city": "Columbus",
                                     "state": "OH", "zip5": "43215", "district_status": DistrictStatus.IN_DISTRICT}
        values.update(kw)
        c = Constituent(**values)
        if email:
            c.emails.append(ConstituentEmail(address=str(email)))
        self.session.add(c)
        self.session.flush()
        return c

    def message(self, **kw: object) -> Message:
        n = next(_seq)
        values: dict[str, object] = {
            "idempotency_key": f"test:{n}", "channel": Channel.EMAIL,
            "received_at": datetime.now(UTC) - timedelta(minutes=n), "subject": f"Subject {n}",
            "body_text": f"Body of message {n}.", "from_address": f"sender{n}@example.net",
            "status": MessageStatus.NEW,
        }
        values.update(kw)
        message = Message(**values)
        self.session.add(message)
        self.session.flush()
        return message
