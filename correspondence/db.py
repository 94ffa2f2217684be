"""Engine and session factory; the boundary (view, job, CLI) owns each transaction."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from correspondence.blobstore import BlobStore

log = logging.getLogger(__name__)
# `?pgbouncer=true` on a PostgreSQL URL: the server at that address is PgBouncer in transaction mode.
POOLER_PARAM = "pgbouncer"
_TRUE = {"1", "true", "yes", "on"}


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
    target, connect_args = _pooler_arguments(url)
    connect_args.update(kwargs.pop("connect_args", None) or {})  # type: ignore[call-overload]  # a dict when given
    return create_engine(target, pool_pre_ping=True, connect_args=connect_args, **kwargs)


def _pooler_arguments(url: str) -> tuple[URL, dict[str, Any]]:
    """The URL psycopg is given, and the connect arguments a pooler in front of PostgreSQL needs.

    PgBouncer in transaction mode gives each transaction whichever server connection is free, so nothing
    may outlive a transaction on the server. Mailroom keeps no session state there (no session advisory
    locks, LISTEN or plain SET); psycopg's prepared statements are the exception: after five runs of one
    query it prepares it on the server connection it happens to hold, and a later transaction, on another
    connection, fails with "prepared statement _pg3_0 does not exist" (or "already exists"). PgBouncer
    1.21+ can track protocol-level prepared statements (max_prepared_statements); older ones (Debian 12
    ships 1.18) cannot, so `?pgbouncer=true` turns preparing off. It is read from the URL rather than a
    setting so every engine built from it (web, workers, the CLI, migrations, the export's reader) agrees.
    """
    parsed = make_url(url)
    if POOLER_PARAM not in parsed.query:
        return parsed, {}
    pooled = str(parsed.query[POOLER_PARAM]).lower() in _TRUE
    return parsed.difference_update_query([POOLER_PARAM]), {"prepare_threshold": None} if pooled else {}


class DatabaseSettings(Protocol):
    """What a Database needs from the settings (config.Settings has it; the kernel does not import config)."""

    @property
    def database_url(self) -> str: ...
    @property
    def blob_dir(self) -> Path: ...


class Database:
    """An engine plus its session factory, created from a URL, connecting lazily."""

    def __init__(self, url: str, *, immediate: bool = False, blob_dir: Path | str | None = None,
                 **engine_options: Any) -> None:
        self.url = url
        self.engine = make_engine(url, immediate=immediate, **engine_options)
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


class ReadReplica:
    """A PostgreSQL streaming replica for reads that may be a moment old, with the primary as its stand-in.

    A replica replays the primary's changes a little later (usually milliseconds; seconds under heavy
    writes or a long query on it), so only pages that never follow their own writes read from it. When it
    cannot be reached, sessions come from the primary instead and a warning is logged; it is tried again
    after retry_seconds, so an outage costs one refused connection per interval, not one per page.
    """

    # How long a connection attempt to the replica may take before the primary is used (a host that drops
    # packets would otherwise hold every page for libpq's default of forever). A URL's own wins.
    CONNECT_TIMEOUT = 3

    def __init__(self, url: str, *, blob_dir: Path | str | None = None, retry_seconds: float = 10.0) -> None:
        connect_args = {} if "connect_timeout" in make_url(url).query else {"connect_timeout": self.CONNECT_TIMEOUT}
        self.database = Database(url, blob_dir=blob_dir, connect_args=connect_args)
        self.retry_seconds = retry_seconds
        self._down_until = 0.0

    def session(self, primary: Database) -> Session:
        """A session on the replica, connected; on the primary when the replica is down."""
        if time.monotonic() < self._down_until:
            return primary.sessions()
        session = self.database.sessions()
        try:
            session.connection()  # connect now, while falling back is still possible
        except OperationalError as exc:
            session.close()
            self._down_until = time.monotonic() + self.retry_seconds
            reason = str(exc.orig or exc).strip().splitlines()
            log.warning("read replica unreachable, reading from the primary retry_after=%ss error=%r",
                        self.retry_seconds, reason[0] if reason else type(exc).__name__)
            return primary.sessions()
        return session

    def dispose(self) -> None:
        self.database.dispose()
