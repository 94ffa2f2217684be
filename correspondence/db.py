"""Engine and session factory; the boundary (view, job, CLI) owns each transaction."""

from __future__ import annotations

import json
import logging
import os
import random
import sqlite3
import sys
import threading
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
# A diagnostic for the embedded mode: with MAILROOM_LOCK_LOG=/some/dir set, every SQLite write transaction
# appends how long it waited for the write lock and how long it held it, and who took it, to a file per
# process in that folder (bench/lock_report.py sums them up). Off unless set.
LOCK_LOG_ENV = "MAILROOM_LOCK_LOG"
_PROJECT_PARTS = ("/web/", "/workers/", "/intake/", "/batching/", "/drafting/", "/casework/", "/outbound/",
                  "/correspondence/services/", "/constituents/", "/insight/", "/coding/", "/archive/")


def make_engine(url: str, *, immediate: bool = False, background: bool = False, **kwargs: object) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout for many processes.

    With immediate, SQLite transactions start with BEGIN IMMEDIATE: a transaction that reads and
    then writes would otherwise fail at once with "database is locked" when another process
    committed in between (SQLite cannot upgrade a stale read snapshot), instead of waiting its turn.
    How it waits its turn is _begin_immediate's: `background` (the workers) asks less often than a web
    request, so people's requests get the lock first.
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
            cur.execute(f"PRAGMA busy_timeout={int(BUSY_SECONDS * 1000)}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            if not immediate:
                conn.exec_driver_sql("BEGIN")
                return
            asked = time.monotonic()
            _begin_immediate(conn.connection.dbapi_connection, background=background)
            conn.info["lock_wait"] = time.monotonic() - asked

        if immediate and os.environ.get(LOCK_LOG_ENV):
            _log_write_lock(engine, Path(os.environ[LOCK_LOG_ENV]))
        return engine
    target, connect_args = _pooler_arguments(url)
    connect_args.update(kwargs.pop("connect_args", None) or {})  # type: ignore[call-overload]  # a dict when given
    return create_engine(target, pool_pre_ping=True, connect_args=connect_args, **kwargs)


# How often a writer asks for SQLite's write lock while another holds it (seconds, ± half at random), and how
# long it keeps asking before "database is locked" (the busy_timeout every other statement has).
ASK_EVERY = 0.001
ASK_EVERY_BACKGROUND = 0.008
BUSY_SECONDS = 30.0


def _begin_immediate(dbapi_conn: Any, *, background: bool) -> None:
    """BEGIN IMMEDIATE, asking again every millisecond or so while another connection holds the lock.

    SQLite's own busy handler sleeps longer the longer it has waited, up to 100 ms between tries, so a
    request that has waited a while misses every short gap between a worker's back-to-back transactions
    and waits seconds behind a queue it should lead (bench/load.py: intake posts waited 3.6 s at p95 for a
    lock held 10 ms at a time). Here every waiter asks again within about a millisecond, and a background
    writer (a worker) first steps aside for a moment and then asks eight times less often, so a web
    request waiting for the lock is first in line when it comes free.
    """
    every = ASK_EVERY_BACKGROUND if background else ASK_EVERY
    if background:
        time.sleep(random.uniform(0, every))  # noqa: S311 - jitter, not a secret
    deadline = time.monotonic() + BUSY_SECONDS
    dbapi_conn.execute("PRAGMA busy_timeout=0")
    try:
        while True:
            try:
                dbapi_conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(every * random.uniform(0.5, 1.5))  # noqa: S311 - jitter, not a secret
    finally:
        dbapi_conn.execute(f"PRAGMA busy_timeout={int(BUSY_SECONDS * 1000)}")


def _who_writes() -> str:
    """The outermost and innermost project functions on the stack: the entry point and the caller."""
    frames: list[str] = []
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if any(part in name for part in _PROJECT_PARTS) and "/correspondence/db.py" not in name:
            frames.append(f"{Path(name).parent.name}/{Path(name).stem}.{frame.f_code.co_name}")
        frame = frame.f_back  # type: ignore[assignment]
    if not frames:
        return "?"
    return frames[-1] if len(frames) == 1 else f"{frames[-1]} > {frames[0]}"


def _log_write_lock(engine: Engine, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    out = (folder / f"locks-{os.getpid()}.jsonl").open("a", buffering=1)
    guard = threading.Lock()

    @event.listens_for(engine, "begin")
    def _began(conn: Connection) -> None:
        # Runs after the BEGIN IMMEDIATE listener above: the lock is held from here.
        conn.info["lock_taken"] = time.monotonic()
        conn.info["lock_who"] = _who_writes()

    def _ended(conn: Connection, how: str) -> None:
        taken = conn.info.pop("lock_taken", None)
        if taken is None:
            return
        line = json.dumps({"at": time.time(), "who": conn.info.pop("lock_who", "?"), "how": how,
                           "wait_ms": round(conn.info.get("lock_wait", 0.0) * 1000, 2),
                           "held_ms": round((time.monotonic() - taken) * 1000, 2), "pid": os.getpid()})
        with guard:
            out.write(line + "\n")

    event.listen(engine, "commit", lambda conn: _ended(conn, "commit"))
    event.listen(engine, "rollback", lambda conn: _ended(conn, "rollback"))


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

    def __init__(self, url: str, *, immediate: bool = False, background: bool = False,
                 blob_dir: Path | str | None = None, **engine_options: Any) -> None:
        self.url = url
        self.engine = make_engine(url, immediate=immediate, background=background, **engine_options)
        # Sessions carry the blob store, so services that keep raw input need no extra argument.
        self.blobs = BlobStore(blob_dir) if blob_dir is not None else None
        self.sessions = sessionmaker(self.engine, expire_on_commit=False, info={"blobs": self.blobs})

    @classmethod
    def from_settings(cls, settings: DatabaseSettings, *, immediate: bool = False,
                      background: bool = False) -> Database:
        return cls(settings.database_url, immediate=immediate, background=background, blob_dir=settings.blob_dir)

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
