"""Per-process access to settings and the database for job entry points."""

from __future__ import annotations

from functools import lru_cache

from config import Settings
from correspondence.db import Database


def settings() -> Settings:
    return Settings.from_env()


@lru_cache(maxsize=4)
def _database(url: str) -> Database:
    return Database(url, immediate=True)


def database() -> Database:
    return _database(settings().database_url)
