"""`mailroom restore DIR`: an archive into an EMPTY database (SQLite or PostgreSQL), blobs into the store.

Order: check the archive against its manifest, refuse a database that holds rows (before migrating it: one that
holds data is not touched), migrate to head, copy the blob files into the store (each checked against its name;
a committed row always has its file), then insert every table in foreign-key order in one transaction.
Columns that point forward or at their own table (a letter's current version, a merged constituent) are
inserted empty and filled in once every row exists.
PostgreSQL's id sequences are moved past the restored ids. Left-out secrets are filled per RESTORED_AS.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Integer, bindparam, column, func, inspect, select, table, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.expression import TableClause

from archive.export import check_files, read_manifest
from archive.tables import LEFT_OUT_COLUMNS, NO_PASSWORD, SEEDED_TABLES, archived_tables, decoders, is_json
from correspondence.blobstore import BlobStore
from correspondence.db import Database
from correspondence.errors import ValidationFailed
from correspondence.migrate import head_revision, upgrade
from correspondence.models import Base

CHUNK = 2000
_DIGEST = re.compile(r"[0-9a-f]{64}")


class RestoreRefused(ValidationFailed):
    """The archive or the target database cannot be restored (not empty, damaged, another version)."""


# What a left-out column holds after a restore (None when not listed).
RESTORED_AS: dict[tuple[str, str], Callable[[], Any]] = {
    ("staffers", "password_hash"): lambda: NO_PASSWORD,
    # Unique and required: a random value that is the hash of no token anyone holds.
    ("intake_tokens", "token_sha256"): lambda: secrets.token_hex(32),
    ("staff_api_tokens", "token_sha256"): lambda: secrets.token_hex(32),
    ("mailbox_accounts", "password_encrypted"): lambda: "",
    # A restored webhook cannot sign until an admin makes it again (outbound.webhooks says so per delivery).
    ("webhook_subscriptions", "secret_encrypted"): lambda: "",
}


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as fh:
        for line in fh:
            yield json.loads(line)


def _members(path: Path) -> Iterator[tuple[str, bytes]]:
    """(name, content) of each file in one of export's blob packs, read straight from its ustar headers.

    The packs are written by hand (archive.export.ustar_header: regular files, names of 64 characters); reading
    them by hand too is four times faster than tarfile's general reader. A header that is not such a file, or
    whose checksum does not add up, refuses the archive.
    """
    with path.open("rb") as fh:
        while True:
            head = fh.read(512)
            if len(head) < 512:
                raise RestoreRefused(f"{path.name}: the pack ends in the middle of a header (damaged archive)")
            if head == bytes(512):
                return  # the end of a tar: zero blocks
            stored = head[148:156]
            if int(stored.strip(b"\0 ") or b"0", 8) != sum(head[:148]) + 256 + sum(head[156:]):
                raise RestoreRefused(f"{path.name}: a damaged header (its checksum does not match)")
            name = head[0:100].rstrip(b"\0").decode("ascii", "replace")
            if head[156:157] not in (b"0", b"\0") or not _DIGEST.fullmatch(name):
                raise RestoreRefused(f"{path.name}: {name[:80]!r} is not a blob file")
            size = int(head[124:136].strip(b"\0 ") or b"0", 8)
            data = fh.read(size)
            if len(data) < size:
                raise RestoreRefused(f"{path.name}: {name} is cut short (damaged archive)")
            if size % 512:
                fh.seek(512 - size % 512, os.SEEK_CUR)
            yield name, data


def _copy_blobs(src: Path, packs: list[dict[str, Any]], store: BlobStore) -> int:
    """Every blob of the archive's packs into the store, checked against its name; one flush to disk at the end.

    Paths are spelled as strings in the store's layout (blobstore.path_for; each name was checked to be a
    SHA-256 above) and each folder is made once: per-blob Path objects, mkdir calls and mkstemp names were
    most of a restore's blob time.
    """
    root = str(store.root)
    made: set[str] = set()
    copied = 0
    pid = os.getpid()
    for pack in packs:
        for name, data in _members(src / pack["file"]):
            if hashlib.sha256(data).hexdigest() != name:
                raise RestoreRefused(f"{pack['file']}: {name[:80]!r} does not match its content's SHA-256 "
                                     "(damaged archive)")
            folder = f"{root}/{name[:2]}/{name[2:4]}"
            target = f"{folder}/{name}"
            if folder not in made:
                os.makedirs(folder, exist_ok=True)
                made.add(folder)
            if os.path.isfile(target) and os.path.getsize(target) == len(data):
                continue
            tmp = f"{folder}/.tmp-{name}-{pid}"
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)
            copied += 1
    os.sync()
    return copied


def holdings(conn: Connection) -> dict[str, int]:
    """Rows per table, for the tables that must be empty before a restore (all but the seeded ones)."""
    counts = {}
    present = set(inspect(conn).get_table_names())
    for t in Base.metadata.sorted_tables:
        if t.name in SEEDED_TABLES or t.name not in present:
            continue
        n = conn.scalar(select(func.count()).select_from(t))
        if n:
            counts[t.name] = int(n)
    return counts


def _deferred(order: list[str]) -> dict[str, list[str]]:
    """Per table, the foreign-key columns that refer to its own table or one restored after it."""
    position = {name: i for i, name in enumerate(order)}
    out: dict[str, list[str]] = {}
    for name in order:
        t = Base.metadata.tables[name]
        for fk in t.foreign_keys:
            target = fk.column.table.name
            if position.get(target, len(order)) >= position[name]:
                out.setdefault(name, []).append(fk.parent.name)
    return out


def _writable(t: Any, names: list[str]) -> TableClause:
    """The table for inserting: the model's types, but JSON that stores None as SQL NULL."""
    cols = [column(n, JSON(none_as_null=True) if is_json(t.c[n]) else t.c[n].type) for n in names]
    return table(t.name, *cols)


def _insert(conn: Connection, target: TableClause, rows: list[dict[str, Any]]) -> int:
    """Insert rows; a row the database refuses (PostgreSQL enforces text lengths SQLite never checked) stops the
    restore with the table and the database's reason, and nothing is kept."""
    try:
        conn.execute(target.insert(), rows)
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise RestoreRefused(f"table {target.name}: the database refused a row ({reason}); "
                             "nothing was restored") from exc
    return len(rows)


def _reset_sequences(conn: Connection) -> None:
    for t in Base.metadata.sorted_tables:
        pk = list(t.primary_key.columns)
        if len(pk) != 1 or not isinstance(pk[0].type, Integer):
            continue
        seq = conn.scalar(text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": t.name, "c": pk[0].name})
        if seq:
            conn.execute(text(f"SELECT setval(:s, COALESCE((SELECT max({pk[0].name}) FROM {t.name}), 0) + 1, false)"),  # noqa: S608 - names from the models
                         {"s": seq})


def restore_archive(url: str, blob_dir: Path, src: Path, *,
                    progress: Callable[[str, int], None] | None = None) -> dict[str, Any]:
    """Restore the archive in src into the empty database at url; returns rows per table and blob files copied."""
    manifest = read_manifest(src)
    head = head_revision(url)
    if manifest["migration_revision"] != head:
        raise RestoreRefused(f"the archive was made at migration {manifest['migration_revision']} and this Mailroom "
                             f"is at {head}: restore it with the Mailroom version that made it, then upgrade")
    if problems := check_files(src, manifest):
        raise RestoreRefused("the archive does not match its manifest:\n  " + "\n  ".join(problems))
    order = [t.name for t in archived_tables()]
    in_archive = [entry["name"] for entry in manifest["tables"]]
    if in_archive != order:
        raise RestoreRefused(f"the archive's tables {in_archive} are not this Mailroom's {order}")

    db = Database(url)
    try:
        _refuse_unless_empty(db)  # before migrating: a database that holds data is not touched at all
        upgrade(url)
        _refuse_unless_empty(db)
        copied = _copy_blobs(src, manifest["blobs"]["packs"], BlobStore(blob_dir))
        if progress:
            progress("blob files", copied)
        counts = _insert_all(db, src, manifest, order, progress)
    finally:
        db.dispose()
    return {"tables": counts, "blob_files": copied}


def _refuse_unless_empty(db: Database) -> None:
    with db.engine.connect() as conn:
        held = holdings(conn)
    if held:
        listed = ", ".join(f"{name}: {n} rows" for name, n in list(held.items())[:5])
        listed += ", …" if len(held) > 5 else ""
        raise RestoreRefused(f"the database is not empty ({listed}); restore needs an empty database: "
                             "create a new one (PostgreSQL: createdb NAME; SQLite: a new file) and set "
                             "DATABASE_URL to it, without running `mailroom init` first")


def _insert_all(db: Database, src: Path, manifest: dict[str, Any], order: list[str],
                progress: Callable[[str, int], None] | None) -> dict[str, int]:
    deferred = _deferred(order)
    files = {entry["name"]: src / entry["file"] for entry in manifest["tables"]}
    counts: dict[str, int] = {}
    later: list[tuple[str, str, list[dict[str, Any]]]] = []
    with db.engine.begin() as conn:
        for name in SEEDED_TABLES:
            conn.execute(Base.metadata.tables[name].delete())
        for name in order:
            t = Base.metadata.tables[name]
            names = [c.name for c in t.columns]
            left_out = LEFT_OUT_COLUMNS.get(name, ())
            decode = decoders(t)
            hold = deferred.get(name, [])
            pk = [c.name for c in t.primary_key.columns]
            target = _writable(t, names)
            fills: dict[str, list[dict[str, Any]]] = {c: [] for c in hold}
            batch: list[dict[str, Any]] = []
            n = 0
            for row in _rows(files[name]):
                for key, dec in decode.items():
                    if row.get(key) is not None:
                        row[key] = dec(row[key])
                for key in left_out:
                    make = RESTORED_AS.get((name, key))
                    row[key] = make() if make else None
                for key in hold:
                    if row.get(key) is not None:
                        fills[key].append({**{f"k_{p}": row[p] for p in pk}, "v": row[key]})
                        row[key] = None
                batch.append(row)
                if len(batch) >= CHUNK:
                    n += _insert(conn, target, batch)
                    batch = []
            if batch:
                n += _insert(conn, target, batch)
            counts[name] = n
            later.extend((name, key, values) for key, values in fills.items() if values)
            if progress:
                progress(name, n)
        for name, key, values in later:
            t = Base.metadata.tables[name]
            where = [t.c[p] == bindparam(f"k_{p}") for p in (c.name for c in t.primary_key.columns)]
            conn.execute(t.update().where(*where).values({key: bindparam("v")}), values)
        if conn.dialect.name == "postgresql":
            _reset_sequences(conn)
    return counts
