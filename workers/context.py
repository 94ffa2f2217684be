"""Per-process access to settings and the database for job entry points."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from config import Settings
from correspondence.db import Database


def settings() -> Settings:
    return Settings.from_env()


@lru_cache(maxsize=4)
def _database(url: str, blob_dir: Path) -> Database:
    return Database(url, immediate=True, blob_dir=blob_dir)


def database() -> Database:
    current = settings()
    return _database(current.database_url, current.blob_dir)
