"""Per-process access to settings and the database for job entry points."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from config import Settings
from correspondence.db import Database


def settings() -> Settings:
    return Settings.from_env()


@lru_cache(maxsize=8)
def _database(url: str, blob_dir: Path, immediate: bool = True) -> Database:
    # Jobs are background writers: on SQLite a web request waiting for the write lock goes first.
    return Database(url, immediate=immediate, background=True, blob_dir=blob_dir)


def database() -> Database:
    current = settings()
    return _database(current.database_url, current.blob_dir)


def reader() -> Database:
    """The same database for a job's long reads: on SQLite its transactions take no write lock (jobs'
    own sessions begin IMMEDIATE, holding the lock from their first statement)."""
    current = settings()
    return _database(current.database_url, current.blob_dir, False)
