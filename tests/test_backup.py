"""Backups that are proven: a consistent snapshot while the office works, restored and compared; retention; the
daily job and the dashboard's alarm; "Export all data" as an admin job with an audited download.

On SQLite by default; with TEST_DATABASE_URL the same tests back up PostgreSQL (pg_dump) and restore into
scratch databases (pg_restore) named after the test database.
"""

from __future__ import annotations

import io
import json
import tarfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from rq import SimpleWorker
from sqlalchemy import func, select

from archive.backup import (
    BLOBS,
    MANIFEST,
    Retention,
    make_backup,
    prune,
    read_manifest,
    restore_snapshot,
    scratch_database,
    snapshots,
    verify_backup,
)
from correspondence.blobstore import BlobStore
from correspondence.db import Database
from correspondence.models import AuditEvent, BackupRecord, Channel, ExportRun, Message, Role
from intake.receive import Incoming, receive
from tests.conftest import cli_env, csrf_token
from workers.cli import cli
from workers.queues import MAINTENANCE, get_queue

RAW = b"From: Pat <pat@example.org>\r\nSubject: Roads %d\r\n\r\nPlease fix the road on Elm Street, number %d.\r\n"


def _receive(db: Database, n: int) -> int:
    with db.unit_of_work() as s:
        item = Incoming(channel=Channel.EMAIL, key=f"<drill-{n}@example.org>", source="drill", raw=RAW % (n, n),
                        content_type="message/rfc822", subject=f"Roads {n}", body_text=f"Please fix road {n}.",
                        from_address="pat@example.org")
        return receive(s, item, max_bytes=1 << 20).message_id


def _server_url(database: Database) -> str | None:
    return database.url if database.url.startswith("postgresql") else None


def _restored(snapshot: Path, database: Database, tmp_path: Path):
    """A context giving the URL of the snapshot restored into a scratch database (a file, or a new PG database)."""
    from contextlib import contextmanager

    @contextmanager
    def scratch():
        if database.url.startswith("postgresql"):
            with scratch_database(database.url) as url:
                restore_snapshot(snapshot, url)
                yield url
        else:
            url = f"sqlite:///{tmp_path / 'restored.sqlite3'}"
            restore_snapshot(snapshot, url)
            yield url

    return scratch()


def test_backup_restores_and_matches_and_copies_each_blob_once(database, tmp_path):
    ids = [_receive(database, n) for n in range(5)]
    dest = tmp_path / "backups"
    first = make_backup(database, dest)
    snapshot = Path(first["path"])
    assert first["database_kind"] == database.engine.dialect.name
    assert first["rows"]["messages"] == 5 and first["rows"]["blobs"] == 5
    assert first["blobs"] == {**first["blobs"], "files": 5, "copied": 5, "missing": []}
    assert first["migration_revision"] and len(first["sha256"]["messages"]) == 64
    assert verify_backup(snapshot, server_url=_server_url(database)) == []

    # Restored, the database holds the same messages, and the backup holds each one's raw input.
    with _restored(snapshot, database, tmp_path) as url:
        restored = Database(url)
        with restored.engine.connect() as conn:
            rows = conn.execute(select(Message.id, Message.raw_sha256).order_by(Message.id)).all()
        restored.dispose()
    assert [r.id for r in rows] == ids
    store = BlobStore(dest / BLOBS)
    assert all(store.get(r.raw_sha256) == RAW % (n, n) for n, r in enumerate(rows))

    # A second backup copies only the new message's raw input.
    _receive(database, 99)
    second = make_backup(database, dest)
    assert second["blobs"]["files"] == 6 and second["blobs"]["copied"] == 1
    assert second["snapshot"] != first["snapshot"]


def test_verify_finds_a_damaged_blob_and_a_changed_database_file(database, tmp_path):
    _receive(database, 1)
    manifest = make_backup(database, tmp_path / "b")
    snapshot = Path(manifest["path"])
    blob = next((tmp_path / "b" / BLOBS).glob("*/*/*"))
    blob.write_bytes(b"not what was received")
    problems = verify_backup(snapshot, server_url=_server_url(database))
    assert any(blob.name in p and "content changed" in p for p in problems), problems
    database_file = snapshot / manifest["database_file"]
    with database_file.open("ab") as fh:
        fh.write(b"\0")
    problems = verify_backup(snapshot, server_url=_server_url(database))
    assert any("changed since the backup" in p for p in problems), problems


def test_restore_drill_under_load_loses_nothing_committed_before_the_snapshot(database, tmp_path):
    """Intake keeps storing messages in another thread (its own connections) while the backup runs."""
    writer_db = Database(database.url, immediate=True, blob_dir=database.blobs.root if database.blobs else None)
    committed: list[int] = []
    stop = threading.Event()
    failures: list[BaseException] = []

    def intake() -> None:
        n = 0
        try:
            while not stop.is_set():
                committed.append(_receive(writer_db, n))  # appended only after the commit
                n += 1
        except BaseException as exc:  # a failure here must fail the test, not vanish with the thread
            failures.append(exc)

    thread = threading.Thread(target=intake, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while len(committed) < 30 and time.monotonic() < deadline:
            time.sleep(0.01)
        before = list(committed)  # every one of these was committed before the snapshot started
        manifest = make_backup(database, tmp_path / "drill")
        time.sleep(0.2)
    finally:
        stop.set()
        thread.join(timeout=30)
        writer_db.dispose()
    assert not failures, failures
    assert len(before) >= 30 and len(committed) > len(before)  # intake ran on during the backup
    snapshot = Path(manifest["path"])
    assert verify_backup(snapshot, server_url=_server_url(database)) == []
    with _restored(snapshot, database, tmp_path) as url:
        restored = Database(url)
        with restored.engine.connect() as conn:
            present = set(conn.scalars(select(Message.id)))
            digests = {i: d for i, d in conn.execute(select(Message.id, Message.raw_sha256))}
        restored.dispose()
    missing = set(before) - present
    assert not missing, f"committed before the snapshot but not in it: {sorted(missing)[:10]}"
    # The snapshot is one committed state: whatever it holds, it holds whole (each message with its raw input).
    store = BlobStore(tmp_path / "drill" / BLOBS)
    assert len(present) == manifest["rows"]["messages"] >= len(before)
    assert all(store.verify(digests[i] or "") for i in present)


def test_retention_keeps_the_newest_of_each_day_and_week(database, tmp_path):
    dest = tmp_path / "kept"
    start = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)  # a Monday
    moments = [start + timedelta(days=day) for day in range(21)] + [start + timedelta(days=20, hours=5)]
    made = [make_backup(database, dest, now=at)["snapshot"] for at in moments]
    removed = prune(dest, Retention(daily=3, weekly=2))
    left = [p.name for p in snapshots(dest)]
    assert sorted(removed + left) == sorted(made)
    # The newest of each of the last three days (the later of Sunday 22 Nov's two), and the newest of each of
    # the last two ISO weeks (22 Nov, already kept as a day; Sunday 15 Nov for the week before).
    assert left == ["2026-11-15T030000Z", "2026-11-20T030000Z", "2026-11-21T030000Z", "2026-11-22T080000Z"]
    assert all((dest / "snapshots" / name / MANIFEST).is_file() for name in left)
    assert verify_backup(dest / "snapshots" / left[0], server_url=_server_url(database)) == []


def test_pruning_deletes_only_blob_files_no_kept_snapshot_lists(database, tmp_path):
    dest = tmp_path / "b"
    _receive(database, 1)
    make_backup(database, dest, now=datetime(2026, 11, 1, tzinfo=UTC))
    with database.unit_of_work() as s:  # the message and its blob row go (as retention would remove them)
        from correspondence.models import Blob

        digest = s.scalar(select(Message.raw_sha256))
        s.query(Message).delete()
        s.query(Blob).delete()
    _receive(database, 2)
    make_backup(database, dest, now=datetime(2026, 11, 2, tzinfo=UTC))
    files = {p.name for p in (dest / BLOBS).glob("*/*/*")}
    assert digest in files and len(files) == 2
    assert prune(dest, Retention(daily=1, weekly=0)) == ["2026-11-01T000000Z"]
    files = {p.name for p in (dest / BLOBS).glob("*/*/*")}
    assert digest not in files and len(files) == 1


def test_backup_command_verify_and_the_dashboard(settings, database, auth, client, tmp_path):
    runner = CliRunner()
    env = {**cli_env(settings), "MAILROOM_BACKUP_DIR": ""}
    _receive(database, 1)
    auth.login(Role.ADMIN)
    page = client.get("/dashboard/").get_data(as_text=True)
    assert "Backups are not set up" in page and "mailroom backup FOLDER" in page

    result = runner.invoke(cli, ["backup", str(tmp_path / "b")], env=env)
    assert result.exit_code == 0, result.output
    assert "Backed up" in result.output
    result = runner.invoke(cli, ["backup", "--verify", str(tmp_path / "b")], env=env)
    assert result.exit_code == 0, result.output
    assert "restores, and every table" in result.output
    with database.unit_of_work() as s:
        actions = list(s.scalars(select(AuditEvent.action).where(AuditEvent.object_type == "backup")))
        backup = s.scalars(select(BackupRecord)).one()
    assert actions == ["backup.made", "backup.verified"]
    assert backup.ok and backup.made_by == "command" and backup.size_bytes > 0
    page = client.get("/dashboard/").get_data(as_text=True)
    assert "Last successful backup:" in page and "No successful backup" not in page

    # 49 hours later with no new backup the dashboard turns red, for supervisors too.
    with database.unit_of_work() as s:
        s.get_one(BackupRecord, backup.id).finished_at = datetime.now(UTC) - timedelta(hours=49)
    page = client.get("/dashboard/").get_data(as_text=True)
    assert "No successful backup in the last 48 hours" in page and 'role="alert"' in page

    # A failed attempt is recorded and said.
    (tmp_path / "file").write_text("in the way")
    result = runner.invoke(cli, ["backup", str(tmp_path / "file" / "backups")], env=env)
    assert result.exit_code == 1 and "could not be written" in result.output, result.output
    with database.unit_of_work() as s:
        failed = s.scalars(select(BackupRecord).where(BackupRecord.ok.is_(False))).one()
        assert s.scalar(select(func.count()).where(AuditEvent.action == "backup.failed")) == 1
    assert failed.error
    client.post("/logout", data={"csrf_token": auth.csrf("/dashboard/")})
    auth.login(Role.SUPERVISOR)
    page = client.get("/dashboard/").get_data(as_text=True)
    assert "No successful backup in the last 48 hours" in page and "The latest attempt failed" in page


def test_the_daily_job_backs_up_only_when_a_folder_is_set(job_env, monkeypatch, database, tmp_path, redis):
    from workers.jobs import run_backup
    from workers.queues import PERIODIC_JOBS, enqueue_due_periodic

    assert "workers.jobs.run_backup" in {j.func for j in PERIODIC_JOBS}
    assert run_backup() == {"skipped": "MAILROOM_BACKUP_DIR is not set"}
    monkeypatch.setenv("MAILROOM_BACKUP_DIR", str(tmp_path / "daily"))
    _receive(database, 1)
    enqueue_due_periodic(redis, jobs=tuple(j for j in PERIODIC_JOBS if j.name == "backup"))
    SimpleWorker([get_queue(MAINTENANCE, redis)], connection=redis).work(burst=True)
    [snapshot] = snapshots(tmp_path / "daily")
    assert read_manifest(snapshot)["rows"]["messages"] == 1
    with database.unit_of_work() as s:
        assert s.scalars(select(BackupRecord.made_by)).all() == ["schedule"]


def test_export_all_data_is_an_admin_job_with_a_download(settings, job_env, auth, client, database, redis, tmp_path):
    _receive(database, 1)
    auth.login(Role.ADMIN)
    page = client.get("/admin/data/").get_data(as_text=True)
    assert "Export all data" in page
    response = client.post("/admin/data/export", data={"csrf_token": csrf_token(client, "/admin/data/")})
    assert response.status_code == 303
    location = response.headers["Location"]
    page = client.get(location).get_data(as_text=True)
    assert "job-progress" in page
    # A second click while it waits asks for nothing new.
    client.post("/admin/data/export", data={"csrf_token": csrf_token(client, "/admin/data/")})
    with database.unit_of_work() as s:
        run_id = s.scalars(select(ExportRun.id)).one()
    # The real job, from the real queue.
    SimpleWorker([get_queue(MAINTENANCE, redis)], connection=redis).work(burst=True)
    page = client.get(f"/admin/data/export/{run_id}").get_data(as_text=True)
    assert "export-download" in page, page
    progress = client.get(f"/admin/data/export/{run_id}.json").get_json()
    assert progress["state"] == "done" and progress["done"] == 100
    token = csrf_token(client, f"/admin/data/export/{run_id}")
    response = client.post(f"/admin/data/export/{run_id}/download", data={"csrf_token": token})
    assert response.status_code == 200 and response.mimetype == "application/gzip"
    with tarfile.open(fileobj=io.BytesIO(response.data), mode="r:gz") as tar:
        names = tar.getnames()
        manifest_name = next(n for n in names if n.endswith("/manifest.json"))
        manifest = json.load(tar.extractfile(manifest_name))  # type: ignore[arg-type]
    messages = next(t for t in manifest["tables"] if t["name"] == "messages")
    assert messages["rows"] == 1 and manifest["blobs"]["files"] == 1
    with database.unit_of_work() as s:
        actions = list(s.scalars(select(AuditEvent.action).where(AuditEvent.object_type == "export_run")
                                 .order_by(AuditEvent.id)))
    assert actions == ["export.start", "export.run", "export.finish", "export.download"]
    # Only admins: a supervisor is refused the page and the file.
    client.post("/logout", data={"csrf_token": auth.csrf("/admin/data/")})
    auth.login(Role.SUPERVISOR)
    assert client.get("/admin/data/").status_code == 403
    assert client.post(f"/admin/data/export/{run_id}/download", data={"csrf_token": token}).status_code == 403


@pytest.mark.parametrize("path", ["/admin/data/export/999", "/admin/data/export/999.json"])
def test_an_unknown_export_is_not_found(auth, client, path):
    auth.login(Role.ADMIN)
    assert client.get(path).status_code == 404


def test_an_archive_holds_calendar_days_and_restores_them(database, tmp_path):
    """The election calendar (Date columns) goes into the archive as "2026-11-03" and comes back as that day."""
    from datetime import date

    from archive.export import export_archive
    from archive.restore import restore_archive
    from archive.verify import verify_archive
    from correspondence.models import Election, ElectionKind

    with database.unit_of_work() as s:
        s.add(Election(kind=ElectionKind.GENERAL, election_date=date(2026, 11, 3)))
    export_archive(database, tmp_path / "archive")
    line = (tmp_path / "archive" / "tables" / "elections.jsonl").read_text()
    assert '"election_date":"2026-11-03"' in line
    url = f"sqlite:///{tmp_path / 'restored.db'}"
    restore_archive(url, tmp_path / "blobs", tmp_path / "archive")
    restored = Database(url, blob_dir=tmp_path / "blobs")
    try:
        assert verify_archive(restored, tmp_path / "blobs", tmp_path / "archive") == []
        with restored.engine.connect() as conn:
            assert conn.scalar(select(Election.election_date)) == date(2026, 11, 3)
    finally:
        restored.dispose()


def test_restore_reads_blob_packs_and_refuses_a_damaged_header(tmp_path):
    """restore reads export's packs by hand: what tarfile reads, and a header whose checksum fails is refused."""
    import hashlib

    from archive.export import ustar_header
    from archive.restore import RestoreRefused, _members

    blobs = [b"first raw input", b"x" * 1000]
    pack = tmp_path / "00001.tar"
    with pack.open("wb") as fh:
        for data in blobs:
            fh.write(ustar_header(hashlib.sha256(data).hexdigest(), len(data)) + data + bytes(-len(data) % 512))
        fh.write(bytes(1024))
    assert list(_members(pack)) == [(hashlib.sha256(d).hexdigest(), d) for d in blobs]
    with tarfile.open(pack) as tar:  # the same files as the standard reader sees them
        assert [m.name for m in tar.getmembers()] == [hashlib.sha256(d).hexdigest() for d in blobs]
    damaged = bytearray(pack.read_bytes())
    damaged[130] = ord("7")  # the first member's size field
    pack.write_bytes(bytes(damaged))
    with pytest.raises(RestoreRefused, match="damaged header"):
        list(_members(pack))
