"""Creating or migrating the database and the first admin account; safe to run again."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from config import Settings
from correspondence.db import Database
from correspondence.migrate import upgrade
from correspondence.models import Role, Staffer
from correspondence.services.staff import create_staffer


@dataclass
class InitResult:
    admin_email: str | None
    one_time_password: str | None


def initialise(settings: Settings, *, admin_email: str = "admin@mailroom.local",
               admin_name: str = "Office Administrator") -> InitResult:
    settings.instance_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    db = Database.from_settings(settings)
    try:
        with db.unit_of_work() as session:
            if session.scalar(select(func.count(Staffer.id))):
                return InitResult(None, None)
            staffer, otp = create_staffer(session, name=admin_name, email=admin_email, role=Role.ADMIN,
                                          actor_id=None)
            return InitResult(staffer.email, otp)
    finally:
        db.dispose()
