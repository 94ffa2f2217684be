"""Creating or migrating the database and the first admin account; safe to run again."""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from config import Settings
from correspondence.db import Database
from correspondence.migrate import upgrade
from correspondence.models import Role, Staffer
from correspondence.services.staff import create_staffer

log = logging.getLogger(__name__)

# Only Mailroom's own user may read what it keeps: casework, releases and addresses are Privacy Act material.
PRIVATE_UMASK = 0o077


def protect_instance(settings: Settings) -> None:
    """Make files this process creates private (umask 077), and tighten the instance's existing ones.

    The instance folder (and the blob folder) become 0700; the SQLite database with its WAL/SHM
    files, the secret key and the embedded Redis dump become 0600. Child processes (workers,
    gunicorn) inherit the umask, and SQLite gives new WAL/SHM files the database file's mode.
    """
    os.umask(PRIVATE_UMASK)
    settings.instance_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    folders = [settings.instance_dir, settings.blob_dir]
    files = [settings.instance_dir / "secret_key", settings.redis_db_path]
    if settings.is_sqlite:
        database = make_url(settings.database_url).database
        if database and database != ":memory:":
            files += [Path(database + suffix) for suffix in ("", "-wal", "-shm", "-journal")]
    for path, mode in [(f, 0o700) for f in folders] + [(f, 0o600) for f in files]:
        # A file that vanished meanwhile (a WAL checkpointed away) or that another user owns is left as it is.
        with contextlib.suppress(FileNotFoundError):
            try:
                os.chmod(path, mode)
            except PermissionError:
                log.warning("cannot make private path=%s mode=%o: not its owner", path, mode)


@dataclass
class InitResult:
    admin_email: str | None
    one_time_password: str | None


def initialise(settings: Settings, *, admin_email: str = "admin@mailroom.local",
               admin_name: str = "Office Administrator") -> InitResult:
    settings.instance_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    upgrade(settings.database_url)
    # Immediate: `mailroom init` may run beside a running app; it waits for the write lock, never fails on it.
    db = Database.from_settings(settings, immediate=True)
    try:
        with db.unit_of_work() as session:
            if session.scalar(select(func.count(Staffer.id))):
                return InitResult(None, None)
            staffer, otp = create_staffer(session, name=admin_name, email=admin_email, role=Role.ADMIN,
                                          actor_id=None)
            return InitResult(staffer.email, otp)
    finally:
        db.dispose()
