"""Engine and session factory; the boundary (view, job, CLI) owns each transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from correspondence.blobstore import BlobStore


def make_engine(url: str, *, immediate: bool = False, **kwargs: object) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout for many processes.

    With immediate, SQLite transactions start with BEGIN IMMEDIATE: a transaction that reads and
    then writes would otherwise fail at once with "database is locked" when another process
    committed in between (SQLite cannot upgrade a stale read snapshot), instead of waiting its turn.
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: object) -> None:
            # pysqlite's own transaction handling is turned off; the begin hook below starts them.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


class DatabaseSettings(Protocol):
    """What a Database needs from the settings (config.Settings has it; the kernel does not import config)."""

    @property
    def database_url(self) -> str: ...
    @property
    def blob_dir(self) -> Path: ...


class Database:
    """An engine plus its session factory, created from a URL, connecting lazily."""

    def __init__(self, url: str, *, immediate: bool = False, blob_dir: Path | str | None = None) -> None:
        self.url = url
        self.engine = make_engine(url, immediate=immediate)
        # Sessions carry the blob store, so services that keep raw input need no extra argument.
        self.blobs = BlobStore(blob_dir) if blob_dir is not None else None
        self.sessions = sessionmaker(self.engine, expire_on_commit=False, info={"blobs": self.blobs})

    @classmethod
    def from_settings(cls, settings: DatabaseSettings, *, immediate: bool = False) -> Database:
        return cls(settings.database_url, immediate=immediate, blob_dir=settings.blob_dir)

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """Yield a session that commits on success and rolls back on error."""
        session = self.sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()
