"""The scaled mode's PostgreSQL helpers against real servers: a streaming read replica (a primary and a
standby cluster the fixture makes with initdb and pg_basebackup) and PgBouncer in transaction mode."""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from config import Settings
from correspondence.db import Database
from correspondence.migrate import upgrade
from correspondence.models import ApplyRun, AuditEvent, Batch, Message, MessageStatus, Response
from tests.conftest import TEST_SECRET_KEY, Auth, csrf_token, need
from tests.factories import Factory

pytestmark = pytest.mark.slow

# Both need PostgreSQL, like the rest of the PostgreSQL run: the SQLite run of the suite leaves them out.
POSTGRES_RUN = os.environ.get("TEST_DATABASE_URL")
PG_BINS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name) if
                 p.parent.name.isdigit() else 0)
PG_BIN = Path(os.environ["MAILROOM_PG_BIN"]) if os.environ.get("MAILROOM_PG_BIN") else (
    PG_BINS[-1] if PG_BINS else None)
# initdb, PostgreSQL and PgBouncer refuse to run as root: as root (CI), the servers run as `postgres`.
AS_ROOT = os.geteuid() == 0
WAIT_SECONDS = 60  # how long a server may take to come up or a replica to catch up before the test gives up


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(*args: str | Path, cwd: Path) -> None:
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, check=False,  # noqa: S603
                          user="postgres" if AS_ROOT else None)
    assert done.returncode == 0, f"{Path(str(args[0])).name} failed: {done.stderr or done.stdout}"


def _work_dir() -> Path:
    """A folder the server user may write (pytest's tmp_path is root's own, mode 0700)."""
    work = Path(tempfile.mkdtemp(prefix="mailroom-pg-"))
    if AS_ROOT:
        shutil.chown(work, "postgres", "postgres")
    return work


def _wait_for(what: str, ready: Callable[[], bool]) -> None:
    """Poll until ready() (a wait for a server, not a timed assert: the limit only stops a hung test)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {WAIT_SECONDS} s")
        time.sleep(0.05)


def _need_servers() -> None:
    if not POSTGRES_RUN:
        pytest.skip("PostgreSQL only: set TEST_DATABASE_URL")
    need(PG_BIN is not None and (PG_BIN / "initdb").exists(), "PostgreSQL server binaries (initdb, pg_ctl, "
         "pg_basebackup) not found under /usr/lib/postgresql/*/bin (apt-get install postgresql)")
    if AS_ROOT:
        need(_user_exists("postgres"), "running as root needs a `postgres` user to run the servers")


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


# --- the read replica -------------------------------------------------------------------------------

@dataclass
class Cluster:
    """One PostgreSQL server in a folder of its own."""

    data: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/mailroom"

    def start(self) -> None:
        assert PG_BIN is not None
        _run(PG_BIN / "pg_ctl", "-D", self.data, "-l", self.data.parent / f"{self.data.name}.log", "-w",
             "-t", str(WAIT_SECONDS), "start", cwd=self.data.parent)

    def stop(self) -> None:
        assert PG_BIN is not None
        _run(PG_BIN / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop", cwd=self.data.parent)

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()


@dataclass
class Replicated:
    primary: Cluster
    replica: Cluster
    primary_db: Database
    replica_db: Database

    def caught_up(self) -> None:
        """Wait until the replica has replayed everything the primary had written when this was called."""
        with self.primary_db.engine.connect() as conn:
            target = conn.scalar(text("SELECT pg_current_wal_lsn()"))

        def replayed() -> bool:
            with self.replica_db.engine.connect() as conn:
                return bool(conn.scalar(text("SELECT pg_last_wal_replay_lsn() >= CAST(:t AS pg_lsn)"), {"t": target}))

        _wait_for("the replica replaying the primary's writes", replayed)

    def replay(self, *, paused: bool) -> None:
        """Hold the replica at what it has replayed so far (or let it go on): a lag as long as the test needs."""
        with self.replica_db.engine.connect() as conn:
            conn.execute(text("SELECT pg_wal_replay_pause()" if paused else "SELECT pg_wal_replay_resume()"))
            conn.commit()


@pytest.fixture(scope="module")
def replicated() -> Iterator[Replicated]:
    """A primary (wal_level=replica) and a streaming hot standby cloned from it by pg_basebackup -R."""
    _need_servers()
    assert PG_BIN is not None
    work = _work_dir()
    primary = Cluster(work / "primary", _free_port())
    replica = Cluster(work / "replica", _free_port())
    started: list[Cluster] = []
    try:
        _run(PG_BIN / "initdb", "-D", primary.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync",
             cwd=work)
        with (primary.data / "postgresql.conf").open("a") as conf:
            conf.write(f"\nport = {primary.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{work}'\n"
                       "wal_level = replica\nmax_wal_senders = 4\nhot_standby = on\nfsync = off\n")
        with (primary.data / "pg_hba.conf").open("a") as hba:
            hba.write("\nhost replication all 127.0.0.1/32 trust\n")
        primary.start()
        started.append(primary)
        _run(PG_BIN / "createdb", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres", "mailroom", cwd=work)
        _run(PG_BIN / "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
             "-D", replica.data, "-R", "-X", "stream", "--checkpoint=fast", "--no-sync", cwd=work)
        with (replica.data / "postgresql.conf").open("a") as conf:
            conf.write(f"\nport = {replica.port}\n")
        replica.start()
        started.append(replica)
        upgrade(primary.url)  # migrated on the primary only: the replica gets the schema by replaying it
        pair = Replicated(primary, replica, Database(primary.url), Database(replica.url))
        pair.caught_up()
        yield pair
        pair.primary_db.dispose()
        pair.replica_db.dispose()
    finally:
        for cluster in reversed(started):
            if cluster.running():
                cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
def replica_app(replicated: Replicated, redis_server: str, tmp_path: Path) -> Iterator[Any]:
    from web import create_app
    from web.ratelimit import clear

    clear(redis_server)
    settings = Settings.from_env({}, instance_dir=tmp_path / "instance", database_url=replicated.primary.url,
                                 database_read_url=replicated.replica.url, secret_key=TEST_SECRET_KEY,
                                 redis_url=redis_server, testing=True, blob_dir_override=tmp_path / "blobs",
                                 require_2fa=frozenset())
    app = create_app(settings)
    yield app
    for name in ("mailroom.db", "mailroom.db_write", "mailroom.db_replica"):
        app.extensions[name].dispose()


@pytest.fixture
def primary_session(replicated: Replicated) -> Iterator[Any]:
    session = replicated.primary_db.sessions()
    yield session
    session.rollback()
    session.close()


def _log_a_call(client, notes: str) -> int:
    """A phone call logged through the call form (a write route): the message id it redirects to."""
    page = client.get("/calls/new").get_data(as_text=True)
    nonce = re.search(r'name="nonce" value="([0-9a-f]{32})"', page)
    assert nonce
    response = client.post("/calls/new", data={"csrf_token": csrf_token(client, "/calls/new"), "nonce": nonce.group(1),
                                               "first_name": "Rosa", "last_name": "Quill", "phone": "(614) 555-0142",
                                               "notes": notes, "stance": "oppose"})
    assert response.status_code == 303, response.get_data(as_text=True)
    found = re.search(r"/messages/(\d+)", response.headers["Location"])
    assert found
    return int(found.group(1))


def test_read_only_pages_read_the_replica_and_writes_the_primary(replica_app, replicated, primary_session):
    from web import db_session, replica_session

    client = replica_app.test_client()
    Auth(client, Factory(primary_session), primary_session).login("supervisor")
    replicated.caught_up()

    # The sessions a request gets: the replica-safe one is on the standby (in recovery), the others not.
    with replica_app.test_request_context("/search/"):
        assert replica_session().scalar(text("SELECT pg_is_in_recovery()")) is True
        assert db_session().scalar(text("SELECT pg_is_in_recovery()")) is False
    with replica_app.test_request_context("/calls/new", method="POST"):
        assert db_session().scalar(text("SELECT pg_is_in_recovery()")) is False

    # Hold the replica back, then write through a form: the write lands on the primary (the standby would
    # refuse it), and the page the form redirects to, read from the primary, shows it at once.
    replicated.replay(paused=True)
    try:
        message_id = _log_a_call(client, "Worried the zanzibarquay clinic will close.")
        assert primary_session.get(Message, message_id) is not None
        assert "zanzibarquay" in client.get(f"/messages/{message_id}").get_data(as_text=True)
        # The replica-safe pages do not have it yet: they really read the replica.
        found = client.get("/search/?q=zanzibarquay")
        assert found.status_code == 200 and f'data-message="{message_id}"' not in found.get_data(as_text=True)
        export = client.get("/inbox/export.csv?status=all")
        assert export.status_code == 200 and f"\n{message_id}," not in export.get_data(as_text=True)
        assert client.get("/dashboard/").status_code == 200
    finally:
        replicated.replay(paused=False)
    replicated.caught_up()
    assert f'data-message="{message_id}"' in client.get("/search/?q=zanzibarquay").get_data(as_text=True)
    assert f"\n{message_id}," in client.get("/inbox/export.csv?status=all").get_data(as_text=True)
    for page in ("/dashboard/", "/dashboard/analytics", "/cases/export.csv", "/constituents/export.csv"):
        assert client.get(page).status_code == 200, page
    # The constituents export is audited: that write went to the primary while its rows came from the replica.
    primary_session.rollback()
    assert primary_session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "constituents.export"))


def test_a_stopped_replica_leaves_the_pages_on_the_primary_with_a_warning(replica_app, replicated, primary_session,
                                                                          caplog):
    client = replica_app.test_client()
    Auth(client, Factory(primary_session), primary_session).login("supervisor")
    # Try the replica again on every page (the default waits ten seconds after a failure) to see it come back.
    replica_app.extensions["mailroom.db_replica"].retry_seconds = 0
    message_id = _log_a_call(client, "The quillfeather bridge is closed again.")
    replicated.caught_up()
    assert f'data-message="{message_id}"' in client.get("/search/?q=quillfeather").get_data(as_text=True)

    replicated.replica.stop()  # the replica engine's pooled connection now points at a closed server
    try:
        with caplog.at_level(logging.WARNING, logger="correspondence.db"):
            page = client.get("/search/?q=quillfeather")
        assert page.status_code == 200 and f'data-message="{message_id}"' in page.get_data(as_text=True)
        assert any("read replica unreachable" in r.getMessage() for r in caplog.records)
        export = client.get("/inbox/export.csv?status=all")
        assert export.status_code == 200 and f"\n{message_id}," in export.get_data(as_text=True)
        assert client.get("/dashboard/").status_code == 200
        # Writes never depended on it.
        assert _log_a_call(client, "A second call while the replica is down.") > message_id
    finally:
        replicated.replica.start()
    replicated.caught_up()
    with replica_app.test_request_context("/search/"):
        from web import replica_session

        assert replica_session().scalar(text("SELECT pg_is_in_recovery()")) is True  # back on the replica


def test_a_read_url_with_sqlite_is_refused(tmp_path):
    from config.settings import SettingsError

    with pytest.raises(SettingsError, match="DATABASE_READ_URL needs PostgreSQL"):
        Settings.from_env({"MAILROOM_INSTANCE_DIR": str(tmp_path), "SECRET_KEY": TEST_SECRET_KEY,
                           "DATABASE_READ_URL": "postgresql://postgres@127.0.0.1/replica"})
    read = Settings.from_env({"MAILROOM_INSTANCE_DIR": str(tmp_path), "SECRET_KEY": TEST_SECRET_KEY,
                              "DATABASE_URL": "postgresql://u@primary/db", "DATABASE_READ_URL": "postgresql://u@r/db"})
    assert read.database_read_url == "postgresql+psycopg://u@r/db"


def test_libpq_and_pg_dump_get_neither_the_pgbouncer_flag_nor_a_password_in_the_url():
    from archive.backup import _libpq
    from correspondence.db import make_engine

    engine = make_engine("postgresql+psycopg://u@pool.example:6432/office?pgbouncer=true&sslmode=require")
    assert dict(engine.url.query) == {"sslmode": "require"}  # what psycopg (libpq) is given
    engine.dispose()
    uri, env = _libpq("postgresql+psycopg://u:pw@pool.example:6432/office?pgbouncer=true&sslmode=require")
    # What pg_dump is given: the password in its environment, not on its command line where `ps` shows it.
    assert uri == "postgresql://u@pool.example:6432/office?sslmode=require" and env["PGPASSWORD"] == "pw"


# --- PgBouncer in transaction mode ------------------------------------------------------------------

@dataclass
class Bouncer:
    port: int
    version: tuple[int, ...]

    def url(self, name: str = "mailroom", *, pooled: bool = True) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}" + ("?pgbouncer=true" if pooled else "")

    def stats(self) -> dict[str, dict[str, str]]:
        """SHOW STATS from PgBouncer's admin console, by database (psql: the console speaks the simple protocol)."""
        assert PG_BIN is not None
        done = subprocess.run([str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",  # noqa: S603
                               "-A", "-F", "\t", "-c", "SHOW STATS", "pgbouncer"],
                              capture_output=True, text=True, check=True)
        header, *rows = done.stdout.strip().splitlines()[:-1]  # the last line is "(n rows)"
        names = header.split("\t")
        return {row.split("\t")[0]: dict(zip(names, row.split("\t"), strict=True)) for row in rows}


def _pgbouncer_version(binary: str) -> tuple[int, ...]:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout  # noqa: S603
    found = re.search(r"PgBouncer (\d+)\.(\d+)", out)
    return (int(found.group(1)), int(found.group(2))) if found else (0, 0)


@pytest.fixture(scope="module")
def bouncer() -> Iterator[Bouncer]:
    """PgBouncer in transaction mode in front of the test database: `mailroom` with three server
    connections (fewer than the clients below, so transactions share them), `single` with one."""
    from sqlalchemy.engine import make_url

    _need_servers()
    binary = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None)
    need(binary is not None, "pgbouncer not installed (apt-get install pgbouncer)")
    assert binary is not None and POSTGRES_RUN
    target = make_url(POSTGRES_RUN)
    work = _work_dir()
    port = _free_port()
    version = _pgbouncer_version(binary)
    server = f"host={target.host or '127.0.0.1'} port={target.port or 5432} dbname={target.database}"
    (work / "userlist.txt").write_text('"postgres" ""\n')
    (work / "pgbouncer.ini").write_text(
        f"[databases]\nmailroom = {server} pool_size=3\nsingle = {server} pool_size=1\n\n"
        f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {work / 'userlist.txt'}\nadmin_users = postgres\n"
        "pool_mode = transaction\nmax_client_conn = 200\n"
        # Newer PgBouncers can keep prepared statements apart themselves; this one is tested as 1.18 behaves.
        + ("max_prepared_statements = 0\n" if version >= (1, 21) else ""))
    if AS_ROOT:
        for path in work.iterdir():
            shutil.chown(path, "postgres", "postgres")
    process = subprocess.Popen([binary, str(work / "pgbouncer.ini")], cwd=work,  # noqa: S603 - a fixed tool
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               user="postgres" if AS_ROOT else None)

    def listening() -> bool:
        assert process.poll() is None, process.stdout.read().decode() if process.stdout else "pgbouncer exited"
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    try:
        _wait_for("PgBouncer listening", listening)
        yield Bouncer(port, version)
    finally:
        process.terminate()
        process.wait(timeout=WAIT_SECONDS)
        shutil.rmtree(work, ignore_errors=True)


def _two_clients_one_server_connection(url: str) -> None:
    """Two application connections take turns on PgBouncer's one server connection, each running one
    statement more often than psycopg's prepare threshold (5), a transaction each time."""
    db = Database(url)
    try:
        with db.engine.connect() as first, db.engine.connect() as second:
            for conn in (first, second):
                for n in range(8):
                    conn.execute(text("SELECT count(*) FROM topics WHERE id > :n"), {"n": n})
                    conn.commit()
    finally:
        db.dispose()


def test_prepared_statements_break_transaction_pooling_unless_the_url_says_pgbouncer(bouncer, database):
    """Why `?pgbouncer=true` exists: without it psycopg's second client reuses a statement name the first
    one prepared on the same server connection."""
    with pytest.raises(DBAPIError, match="prepared statement"):
        _two_clients_one_server_connection(bouncer.url("single", pooled=False))
    _two_clients_one_server_connection(bouncer.url("single"))


def test_intake_processing_and_apply_to_all_through_pgbouncer(bouncer, database, redis_server, tmp_path, monkeypatch):
    """The main flow with several threads at once through PgBouncer's transaction pooling: calls logged
    through the web form, mail received and processed by the job entry point, an apply-to-all run, and
    the read-only pages meanwhile."""
    from drafting import letters
    from drafting.apply import start_run
    from intake.mail import incoming_email
    from intake.receive import receive
    from web import create_app
    from web.ratelimit import clear
    from workers import jobs

    url = bouncer.url()
    blobs = tmp_path / "blobs"
    for name, value in {"DATABASE_URL": url, "MAILROOM_INSTANCE_DIR": str(tmp_path / "instance"),
                        "MAILROOM_BLOB_DIR": str(blobs), "SECRET_KEY": TEST_SECRET_KEY,
                        "REDIS_URL": redis_server}.items():
        monkeypatch.setenv(name, value)
    clear(redis_server)
    settings = Settings.from_env(testing=True, require_2fa=frozenset())
    assert settings.database_url == url
    app = create_app(settings)
    db = Database(url, blob_dir=blobs)
    before = {name: int(row["total_xact_count"]) for name, row in bouncer.stats().items()}
    problems: list[BaseException] = []

    def together(work: list[Callable[[], object]]) -> None:
        def run(step: Callable[[], object]) -> None:
            try:
                step()
            except BaseException as exc:  # noqa: BLE001 - every thread's failure is reported below
                problems.append(exc)

        threads = [threading.Thread(target=run, args=(step,)) for step in work]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not problems, problems

    try:
        # 1. Four staff log calls through the web form at once (each post: receive, process, commit).
        clients = []
        with db.unit_of_work() as session:
            factory = Factory(session)
            staff = [factory.staffer("supervisor") for _ in range(4)]
        for staffer in staff:
            client = app.test_client()
            assert client.post("/login", data={"email": staffer.email, "password": Factory.PASSWORD,
                                               "csrf_token": csrf_token(client)}).status_code == 302
            clients.append(client)

        def log_calls(client) -> Callable[[], object]:
            return lambda: [_log_a_call(client, f"Call {n} about the water plant.") for n in range(5)]

        together([log_calls(c) for c in clients])

        # 2. Mail received by the adapter's service, then processed by the job entry point, four at once.
        ids = []
        with db.unit_of_work() as session:
            for n in range(24):
                raw = (f"From: Writer {n} <writer{n}@example.org>\r\nTo: office@house.example\r\n"
                       f"Subject: Clean water\r\nMessage-ID: <pgb-{n}@example.org>\r\n\r\n"
                       f"Please protect the river, letter {n}.\r\n").encode()
                ids.append(receive(session, incoming_email(raw, "test"), max_bytes=10**6).message_id)
        def process(part: list[int]) -> Callable[[], object]:
            return lambda: [jobs.run_process_message(i) for i in part]

        together([process(ids[k::4]) for k in range(4)])
        with db.unit_of_work() as session:
            processed = session.scalars(select(Message).where(Message.id.in_(ids))).all()
            assert len(processed) == 24 and all(m.processed_at is not None for m in processed)
            assert {m.status for m in processed} == {MessageStatus.NEW}

            # 3. An approved letter applied to all of them while staff read the dashboard and search.
            author, boss = staff[0], staff[1]
            version = letters.create_letter(session, title="Clean water", body="{{ constituent.salutation }}\n\n"
                                            "Thank you for writing.\n\n{{ office.signature }}", actor_id=author.id)
            letters.submit(session, version.id, actor_id=author.id)
            letters.approve(session, version.id, actor_id=boss.id)
            batch = Batch(title="Clean water", template_text="x")
            session.add(batch)
            session.flush()
            for message in session.scalars(select(Message).where(Message.id.in_(ids))):
                message.batch_id = batch.id
            run = start_run(session, version.id, batch_id=batch.id, actor_id=author.id)
            session.flush()
            run_id = run.id

        def read_pages(client) -> Callable[[], object]:
            def visit() -> None:
                for _ in range(3):
                    for page in ("/dashboard/", "/search/?q=river", "/inbox/export.csv?status=all"):
                        assert client.get(page).status_code == 200, page
            return visit

        together([lambda: jobs.run_apply(run_id)] + [read_pages(c) for c in clients[:3]])
        with db.unit_of_work() as session:
            finished = session.get(ApplyRun, run_id)
            assert finished is not None and finished.state == "done" and finished.created_count == 24
            answered = select(func.count(Response.id)).where(Response.message_id.in_(ids))
            assert session.scalar(answered) == 24
        after = bouncer.stats()["mailroom"]
        # It all went through PgBouncer: hundreds of transactions on its three server connections.
        assert int(after["total_xact_count"]) - before.get("mailroom", 0) > 200
    finally:
        for name in ("mailroom.db", "mailroom.db_write"):
            app.extensions[name].dispose()
        db.dispose()
        from workers import context

        context._database.cache_clear()  # its engine points at this test's PgBouncer
