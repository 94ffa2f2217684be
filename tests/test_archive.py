"""Export, restore and verify (archive/): a demo office on SQLite → archive → PostgreSQL (and SQLite) → archive,
with counts and checksums equal; restore refuses a database that holds data; verify reports a changed file or
row; the app works on restored data once a password is reset."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from markupsafe import escape
from sqlalchemy import func, select, text, update

from archive.export import export_archive, read_manifest
from archive.restore import RestoreRefused, restore_archive
from archive.tables import LEFT_OUT_COLUMNS, LEFT_OUT_TABLES, NO_PASSWORD
from archive.verify import verify_archive
from config import Settings
from correspondence.db import Database
from correspondence.migrate import upgrade
from correspondence.models import (
    AuditEvent,
    Blob,
    Constituent,
    FormLetter,
    IntakeToken,
    MailboxAccount,
    Message,
    RecoveryCode,
    Role,
    Staffer,
    WebAuthnCredential,
)
from correspondence.passwords import hash_password
from tests.conftest import TEST_SECRET_KEY, cli_env, csrf_token
from workers.cli import cli

PASSWORD_HASH = hash_password("the source office's password")


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """A demo office on its own SQLite file, plus the rows the demo does not make: secrets of every kind, a
    constituent merged into a later one (a reference forward), a blob kept in the database (before 0005)."""
    from demo.office import build_demo_office

    root = tmp_path_factory.mktemp("source")
    url = f"sqlite:///{root / 'source.db'}"
    upgrade(url)
    db = Database(url, blob_dir=root / "blobs")
    build_demo_office(db, root / "instance", messages=300, constituents=120, seed=4)
    with db.unit_of_work() as s:
        admin = s.scalars(select(Staffer).order_by(Staffer.id)).first()
        admin.password_hash = PASSWORD_HASH
        admin.totp_secret = "JBSWY3DPEHPK3PXP"
        s.add_all([
            IntakeToken(name="web form", token_sha256="a" * 64, created_by_id=admin.id),
            MailboxAccount(name="inbox", host="imap.example.org", username="office",
                           password_encrypted="sealed-mailbox-password", processed_folder="Done"),
            RecoveryCode(staffer_id=admin.id, code_hash="b" * 64),
            WebAuthnCredential(staffer_id=admin.id, credential_id="cred-1", public_key=b"\x00\x01key", name="key"),
            Blob(sha256="c" * 64, size=4, content_type="text/plain", data=b"\x00old"),
        ])
        first, last = s.scalars(select(Constituent).order_by(Constituent.id)).all()[::119][:2]
        first.merged_into_id = last.id
    yield db
    db.dispose()


@pytest.fixture(scope="module")
def archive_dir(source: Database, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("archive") / "office"
    manifest = export_archive(source, dest)
    assert manifest["blobs"]["missing"] == []
    return dest


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new PostgreSQL database beside the test one; the round trip needs a server, like CI has."""
    given = os.environ.get("TEST_DATABASE_URL", "")
    if not given:  # like the other PostgreSQL-only tests: CI's PostgreSQL pass (make test-postgres) runs it
        pytest.skip("a PostgreSQL test: run with TEST_DATABASE_URL (make test-postgres)")
    base = Settings.from_env({"DATABASE_URL": given, "SECRET_KEY": TEST_SECRET_KEY}).database_url
    name = f"mailroom_archive_{uuid.uuid4().hex[:10]}"
    admin = Database(base)
    with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield base.rsplit("/", 1)[0] + "/" + name
    with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _round_trip(archive_dir: Path, url: str, tmp_path: Path) -> tuple[Database, dict[str, Any]]:
    restored = restore_archive(url, tmp_path / "blobs2", archive_dir)
    db = Database(url, blob_dir=tmp_path / "blobs2")
    assert verify_archive(db, tmp_path / "blobs2", archive_dir) == []
    again = export_archive(db, tmp_path / "again")
    first = read_manifest(archive_dir)
    assert again["tables"] == first["tables"]  # every table: same file name, row count and SHA-256
    assert again["blobs"]["files"] == first["blobs"]["files"] > 0
    assert [p["sha256"] for p in again["blobs"]["packs"]] == [p["sha256"] for p in first["blobs"]["packs"]]
    assert restored["tables"] == {t["name"]: t["rows"] for t in first["tables"]}
    return db, first


def _check_restored(db: Database, source: Database) -> None:
    with source.engine.connect() as a, db.engine.connect() as b:
        for model in (AuditEvent, Message, Constituent, FormLetter):
            n = a.scalar(select(func.count()).select_from(model))
            assert n and b.scalar(select(func.count()).select_from(model)) == n
        # A reference forward (merged into a later constituent) and the letter ↔ current version cycle came back.
        assert b.scalar(select(func.count()).where(Constituent.merged_into_id.is_not(None))) == 1
        assert b.scalar(select(func.count()).where(FormLetter.current_version_id.is_not(None))) == a.scalar(
            select(func.count()).where(FormLetter.current_version_id.is_not(None)))
        assert b.scalar(select(Blob.data).where(Blob.sha256 == "c" * 64)) == b"\x00old"
        # Secrets stayed behind: no password, no second factor, an unusable token, no mailbox password.
        hashes = set(b.scalars(select(Staffer.password_hash)))
        assert hashes == {NO_PASSWORD}
        assert b.scalar(select(func.count()).where(Staffer.totp_secret.is_not(None))) == 0
        assert b.scalar(select(IntakeToken.token_sha256)) != "a" * 64
        assert b.scalar(select(MailboxAccount.password_encrypted)) == ""
        for secrets in (RecoveryCode, WebAuthnCredential):
            assert b.scalar(select(func.count()).select_from(secrets)) == 0
    # New rows after the restore get new ids (PostgreSQL's sequences moved past the restored ones).
    with db.unit_of_work() as s:
        highest = s.scalar(select(func.max(Staffer.id))) or 0
        after = Staffer(name="After", email="after@example.org", role=Role.CORRESPONDENT, password_hash=NO_PASSWORD)
        s.add(after)
        s.flush()
        assert after.id > highest


def test_sqlite_to_postgresql_to_archive_matches(source, archive_dir, postgres_url, tmp_path):
    db, _manifest = _round_trip(archive_dir, postgres_url, tmp_path)
    try:
        _check_restored(db, source)
    finally:
        db.dispose()


def test_sqlite_to_sqlite_round_trip(source, archive_dir, tmp_path):
    db, _manifest = _round_trip(archive_dir, f"sqlite:///{tmp_path / 'restored.db'}", tmp_path)
    try:
        _check_restored(db, source)
        with db.engine.connect() as conn:  # the full-text index was filled by its triggers as rows came in
            assert conn.scalar(text("SELECT count(*) FROM messages_fts")) == conn.scalar(
                select(func.count(Message.id)))
    finally:
        db.dispose()


def test_archive_is_open_and_leaves_secrets_out(archive_dir):
    manifest = read_manifest(archive_dir)
    names = [t["name"] for t in manifest["tables"]]
    assert names.index("constituents") < names.index("messages") < names.index("responses")
    assert not set(LEFT_OUT_TABLES) & set(names)
    staff = _lines(archive_dir / "tables" / "staffers.jsonl")
    assert staff and all(not set(LEFT_OUT_COLUMNS["staffers"]) & set(row) for row in staff)
    raw = b"".join(p.read_bytes() for p in (archive_dir / "tables").glob("*.jsonl"))
    for secret in (PASSWORD_HASH, "JBSWY3DPEHPK3PXP", "a" * 64, "b" * 64, "sealed-mailbox-password"):
        assert secret.encode() not in raw
    message = _lines(archive_dir / "tables" / "messages.jsonl")[0]
    assert message["received_at"].endswith("+00:00") and message["channel"] in {"email", "webform", "cwc", "paper",
                                                                                  "phone", "social", "walk_in"}
    events = _lines(archive_dir / "tables" / "audit_events.jsonl")
    assert len(events) == next(t["rows"] for t in manifest["tables"] if t["name"] == "audit_events") > 0


def test_restore_refuses_a_database_that_holds_data(source, archive_dir):
    with pytest.raises(RestoreRefused, match="not empty"):
        restore_archive(source.url, Path(source.blobs.root), archive_dir)


def test_restore_command_refuses_non_empty_database(settings, factory, session, archive_dir):
    factory.staffer()
    session.commit()
    result = CliRunner().invoke(cli, ["restore", str(archive_dir)], env=cli_env(settings))
    assert result.exit_code == 1
    assert "not empty" in result.output and "staffers: 1 rows" in result.output


def test_verify_reports_a_changed_file_and_a_changed_row(source, archive_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(archive_dir, copy)
    messages = copy / "tables" / "messages.jsonl"
    lines = messages.read_text(encoding="utf-8").splitlines(keepends=True)
    row = json.loads(lines[0])
    row["subject"] = "Changed after the export"
    lines[0] = json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
    messages.write_text("".join(lines), encoding="utf-8")
    problems = verify_archive(source, Path(source.blobs.root), copy)
    assert len(problems) == 1 and problems[0].startswith("tables/messages.jsonl: SHA-256")

    restored = tmp_path / "restored.db"
    restore_archive(f"sqlite:///{restored}", tmp_path / "blobs", archive_dir)
    db = Database(f"sqlite:///{restored}", blob_dir=tmp_path / "blobs")
    with db.unit_of_work() as s:
        s.execute(update(Message).where(Message.id == row["id"]).values(subject="Changed in the database"))
    one_blob = next((tmp_path / "blobs").rglob("*/*/*"))
    one_blob.unlink()
    problems = verify_archive(db, tmp_path / "blobs", archive_dir)
    db.dispose()
    assert any(p.startswith("table messages: same row count") for p in problems)
    assert any(p == f"blob {one_blob.name}: missing from the blob store or its content changed" for p in problems)
    env = {"DATABASE_URL": f"sqlite:///{restored}", "MAILROOM_INSTANCE_DIR": str(tmp_path / "instance"),
           "MAILROOM_BLOB_DIR": str(tmp_path / "blobs"), "SECRET_KEY": TEST_SECRET_KEY}
    result = CliRunner().invoke(cli, ["verify", str(archive_dir)], env=env)
    assert result.exit_code == 1 and "table messages: same row count" in result.output


def test_the_app_works_on_restored_data(archive_dir, tmp_path, redis_server):
    """Restore with the commands an office runs, reset a password, sign in with it and open the inbox."""
    from web import create_app

    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'office.db'}", "MAILROOM_INSTANCE_DIR": str(tmp_path / "instance"),
           "MAILROOM_BLOB_DIR": str(tmp_path / "blobs"), "SECRET_KEY": TEST_SECRET_KEY}
    runner = CliRunner()
    restored = runner.invoke(cli, ["restore", str(archive_dir)], env=env)
    assert restored.exit_code == 0, restored.output
    assert "mailroom staff reset-password EMAIL" in restored.output
    assert runner.invoke(cli, ["verify", str(archive_dir)], env=env).exit_code == 0
    admin = _lines(archive_dir / "tables" / "staffers.jsonl")[0]  # the demo office's supervisor
    reset = runner.invoke(cli, ["staff", "reset-password", admin["email"]], env=env)
    assert reset.exit_code == 0, reset.output
    otp = reset.output.split("One-time password: ")[1].split()[0]

    settings = Settings.from_env({}, instance_dir=tmp_path / "instance", database_url=env["DATABASE_URL"],
                                 secret_key=TEST_SECRET_KEY, redis_url=redis_server, testing=True,
                                 blob_dir_override=tmp_path / "blobs", require_2fa=frozenset())
    app = create_app(settings)
    client = app.test_client()
    try:
        signed_in = client.post("/login", data={"email": admin["email"], "password": otp,
                                                "csrf_token": csrf_token(client)})
        assert signed_in.status_code == 302
        new = "a brand new long password for the restored office"
        changed = client.post("/account/password", data={"csrf_token": csrf_token(client, "/account/password"),
                                                         "current": otp, "new": new, "confirm": new})
        assert changed.status_code == 302
        inbox = client.get("/inbox/")
        assert inbox.status_code == 200
        message = _lines(archive_dir / "tables" / "messages.jsonl")[-1]
        page = client.get(f"/messages/{message['id']}")
        assert page.status_code == 200
        assert escape(message["subject"]) in page.get_data(as_text=True)
    finally:
        app.extensions["mailroom.db"].dispose()
        app.extensions["mailroom.db_write"].dispose()


@pytest.mark.parametrize("stored", ["2026-12-03 17:28:06.122874", "2026-12-03 17:28:06.000000", "2026-12-03 17:28:06",
                                    "2026-12-03T17:28:06.5+00:00"])
def test_sqlite_times_are_written_as_postgresql_ones_are(stored):
    """Export reads SQLite's stored text directly; it must equal what PostgreSQL's datetimes print."""
    from datetime import UTC, datetime

    from archive.tables import _iso, _sqlite_iso

    parsed = datetime.fromisoformat(stored)
    assert _sqlite_iso(stored) == _iso(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))


def test_a_row_postgresql_refuses_stops_the_restore_and_keeps_nothing(archive_dir, postgres_url, tmp_path):
    """SQLite never checked text lengths; PostgreSQL does. The restore says which table and why, and the
    database stays empty, so it can be run again once the row is fixed."""
    import hashlib

    from archive.restore import holdings

    copy = tmp_path / "copy"
    shutil.copytree(archive_dir, copy)
    path = copy / "tables" / "constituents.jsonl"
    rows = path.read_text(encoding="utf-8").splitlines(keepends=True)
    row = json.loads(rows[-1])
    row["city"] = "x" * 500  # constituents.city is at most 100 characters
    rows[-1] = json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
    path.write_text("".join(rows), encoding="utf-8")
    manifest = json.loads((copy / "manifest.json").read_text())
    entry = next(t for t in manifest["tables"] if t["name"] == "constituents")
    entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (copy / "manifest.json").write_text(json.dumps(manifest))

    with pytest.raises(RestoreRefused, match=r"table constituents: the database refused a row .*too long"):
        restore_archive(postgres_url, tmp_path / "blobs", copy)
    db = Database(postgres_url)
    with db.engine.connect() as conn:
        assert holdings(conn) == {}
    db.dispose()
