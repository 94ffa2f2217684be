"""Export benchmark: fill a SQLite database with N messages (each with its raw input as a blob file), then time
`mailroom export`'s code path, `verify` on the same database, and optionally a restore into a new one.

    python bench/export.py [--messages 200000] [--raw-share 1.0] [--restore] [--backup] [--workdir DIR]

The filling runs in a child process, so the peak memory reported (ru_maxrss of this process) is the
export's and verify's own: constant memory means it stays flat as --messages grows.
Prints one JSON object and writes it to bench/results/export-sqlite-<N>.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select, update  # noqa: E402

from config import Settings  # noqa: E402
from correspondence.db import Database  # noqa: E402
from correspondence.migrate import upgrade  # noqa: E402
from correspondence.models import Blob, Message  # noqa: E402

RAW = """From: Sender {i} <sender{i}@example.net>
To: office@example.gov
Subject: Subject about issue {m}
Message-ID: <bench-{i}@example.net>
Date: Mon, 1 Dec 2026 10:00:00 +0000
Content-Type: text/plain; charset=utf-8

{body}
"""


def settings_for(workdir: Path) -> Settings:
    return Settings.from_env({}, instance_dir=workdir / "instance", database_url=f"sqlite:///{workdir / 'bench.db'}",
                             secret_key="bench-secret-key-0123456789abcdef0123", redis_url="redis://unused",
                             testing=False)


def fill(workdir: Path, n: int, raw_share: float) -> None:
    """Messages as bench/pages.py makes them, plus a raw input blob (row and file) for a share of them."""
    from pages import fill as fill_pages

    settings = settings_for(workdir)
    upgrade(settings.database_url)
    db = Database.from_settings(settings)
    fill_pages(db, n)
    assert db.blobs is not None
    every = max(1, round(1 / raw_share)) if raw_share > 0 else 0
    with db.engine.begin() as conn:
        rows = conn.execute(select(Message.id, Message.subject, Message.body_text).order_by(Message.id)).all()
        blobs, links = [], []
        for mid, subject, body in rows:
            if not every or mid % every:
                continue
            data = RAW.format(i=mid, m=subject, body=body).encode()
            digest = hashlib.sha256(data).hexdigest()
            path = db.blobs.path_for(digest)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)  # no fsync per file: a benchmark's scratch data
            blobs.append({"sha256": digest, "size": len(data), "content_type": "message/rfc822"})
            links.append({"mid": mid, "sha": digest})
            if len(blobs) >= 5000:
                _store(conn, blobs, links)
        _store(conn, blobs, links)
    db.dispose()


def _store(conn, blobs: list[dict], links: list[dict]) -> None:
    from sqlalchemy import bindparam, insert

    if blobs:
        conn.execute(insert(Blob), blobs)
        conn.execute(update(Message).where(Message.id == bindparam("mid")).values(raw_sha256=bindparam("sha"))
                     .execution_options(synchronize_session=False), links)
    blobs.clear()
    links.clear()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--raw-share", type=float, default=1.0, help="share of messages with a raw input blob")
    ap.add_argument("--restore", action="store_true", help="also time a restore into a new SQLite database")
    ap.add_argument("--backup", action="store_true",
                    help="also time `mailroom backup` (a first and a second, incremental, snapshot) and --verify")
    ap.add_argument("--workdir", default=None, help="reuse a filled database from an earlier run")
    ap.add_argument("--fill-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="mailroom-export-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if args.fill_only:
        fill(workdir, args.messages, args.raw_share)
        return
    if not (workdir / "bench.db").exists():
        started = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--fill-only", "--messages", str(args.messages),
                        "--raw-share", str(args.raw_share), "--workdir", str(workdir)], check=True)
        print(f"filled in {time.perf_counter() - started:.0f} s", file=sys.stderr)

    from archive.export import export_archive
    from archive.verify import verify_archive

    settings = settings_for(workdir)
    db = Database.from_settings(settings)
    with db.engine.connect() as conn:
        messages = conn.scalar(select(func.count(Message.id))) or 0
    dest = workdir / f"archive-{int(time.time())}"
    started = time.perf_counter()
    manifest = export_archive(db, dest)
    export_s = time.perf_counter() - started
    rss_export = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    problems = verify_archive(db, settings.blob_dir, dest)
    verify_s = time.perf_counter() - started
    db.dispose()
    rows = sum(t["rows"] for t in manifest["tables"])
    size = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file())
    result: dict[str, object] = {
        "database": "sqlite", "messages": messages, "rows": rows, "blob_files": manifest["blobs"]["files"],
        "archive_mb": round(size / 1e6, 1),
        "export_seconds": round(export_s, 2), "export_messages_per_s": round(messages / export_s),
        "export_rows_per_s": round(rows / export_s),
        "verify_seconds": round(verify_s, 2), "verify_differences": len(problems),
        "peak_rss_mb_export": round(rss_export / 1024, 1),
        "peak_rss_mb_export_and_verify": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "cpu": os.cpu_count(), "load_average_1min_after": round(os.getloadavg()[0], 1),
    }
    if args.restore:
        from archive.restore import restore_archive

        target = workdir / f"restored-{int(time.time())}"
        started = time.perf_counter()
        restore_archive(f"sqlite:///{target}.db", target / "blobs", dest)
        result["restore_seconds"] = round(time.perf_counter() - started, 2)
        result["restore_rows_per_s"] = round(rows / (time.perf_counter() - started))
    if args.backup:
        from archive.backup import make_backup, verify_backup

        db = Database.from_settings(settings)
        backups = workdir / f"backups-{int(time.time())}"
        started = time.perf_counter()
        first = make_backup(db, backups)
        result["backup_first_seconds"] = round(time.perf_counter() - started, 2)
        started = time.perf_counter()
        second = make_backup(db, backups)
        result["backup_incremental_seconds"] = round(time.perf_counter() - started, 2)
        result["backup_blob_files_copied"] = [first["blobs"]["copied"], second["blobs"]["copied"]]
        started = time.perf_counter()
        problems = verify_backup(Path(second["path"]))
        result["backup_verify_seconds"] = round(time.perf_counter() - started, 2)
        result["backup_verify_problems"] = len(problems)
        db.dispose()
    out = ROOT / "bench" / "results" / f"export-sqlite-{messages}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
