"""Data at rest (issue 12 item 7): the instance folder is 0700, the database and its WAL/SHM files 0600."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

from tests.conftest import TEST_SECRET_KEY

ROOT = Path(__file__).resolve().parent.parent


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _mailroom(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the real `mailroom` CLI in a child whose inherited umask (022) would leave files world-readable."""
    full_env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), **env}
    return subprocess.run([sys.executable, "-m", "workers.cli", *args], env=full_env, cwd=ROOT,  # noqa: S603
                          capture_output=True, text=True, timeout=300, preexec_fn=lambda: os.umask(0o022),
                          check=False)


def test_init_creates_a_private_instance_and_wal_files_follow(tmp_path):
    instance = tmp_path / "instance"
    done = _mailroom(["init"], {"MAILROOM_INSTANCE_DIR": str(instance)})
    assert done.returncode == 0, done.stderr
    database = instance / "mailroom.db"
    assert _mode(instance) == 0o700
    assert _mode(database) == 0o600
    assert _mode(instance / "secret_key") == 0o600
    # While a connection writes, SQLite keeps the WAL and SHM files beside the database.
    conn = sqlite3.connect(database)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (x)")
        conn.commit()
        for suffix in ("-wal", "-shm"):
            assert _mode(Path(f"{database}{suffix}")) == 0o600, suffix
    finally:
        conn.close()


def test_init_tightens_an_existing_instance_with_its_wal_files(tmp_path):
    instance = tmp_path / "instance"
    assert _mailroom(["init"], {"MAILROOM_INSTANCE_DIR": str(instance)}).returncode == 0
    database = instance / "mailroom.db"
    # An instance made by an older Mailroom, or copied in with a lax umask: readable by everyone.
    os.chmod(instance, 0o755)
    os.chmod(database, 0o644)
    conn = sqlite3.connect(database)  # held open, so its WAL/SHM (created 0644 like the database) stay
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (x)")
        conn.commit()
        wal, shm = Path(f"{database}-wal"), Path(f"{database}-shm")
        assert _mode(wal) == 0o644 and _mode(shm) == 0o644
        done = _mailroom(["init"], {"MAILROOM_INSTANCE_DIR": str(instance)})
        assert done.returncode == 0, done.stderr
        assert (_mode(instance), _mode(database), _mode(wal), _mode(shm)) == (0o700, 0o600, 0o600, 0o600)
    finally:
        conn.close()


def test_worker_tightens_the_instance_on_start(tmp_path, redis, redis_server):
    instance = tmp_path / "instance"
    instance.mkdir(mode=0o755)
    os.chmod(instance, 0o755)
    key = instance / "secret_key"
    key.write_text(TEST_SECRET_KEY)
    os.chmod(key, 0o644)
    done = _mailroom(["worker", "--burst"], {"MAILROOM_INSTANCE_DIR": str(instance), "REDIS_URL": redis_server})
    assert done.returncode == 0, done.stderr
    assert _mode(instance) == 0o700 and _mode(key) == 0o600


def test_every_command_creates_private_files_even_outside_the_instance(tmp_path):
    """`mailroom import` (like demo) writes raw input to the blob folder, which may live elsewhere."""
    env = {"MAILROOM_INSTANCE_DIR": str(tmp_path / "instance"), "MAILROOM_BLOB_DIR": str(tmp_path / "blobs")}
    assert _mailroom(["init"], env).returncode == 0
    letter = tmp_path / "letter.eml"
    letter.write_text("From: Ana <ana@example.org>\r\nTo: office@example.gov\r\nSubject: Bridge\r\n"
                      "Message-ID: <modes-1@example.org>\r\n\r\nPlease fix the bridge.\r\n")
    done = _mailroom(["import", "eml", str(letter)], env)
    assert done.returncode == 0, done.stderr
    blobs = tmp_path / "blobs"
    stored = [p for p in blobs.rglob("*") if p.is_file()]
    assert stored, "the raw email was not kept"
    assert {_mode(p) for p in stored} == {0o600}
    assert {_mode(p) for p in [blobs, *(p for p in blobs.rglob("*") if p.is_dir())]} == {0o700}
