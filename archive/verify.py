"""`mailroom verify DIR`: does the database (and its blob store) hold what the archive's manifest says?

Checks, and reports every difference: the archive's files against the manifest (a changed file), each
table's row count and checksum computed exactly as export computes them, and every blob file the database
relies on present in the store with content matching its name.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from archive.export import check_files, read_manifest
from archive.tables import archived_tables, table_sum
from correspondence.blobstore import BlobStore
from correspondence.db import Database
from correspondence.models import Blob


def verify_archive(db: Database, blob_dir: Path, src: Path) -> list[str]:
    """Every difference between the archive in src and the database; an empty list when they agree."""
    manifest = read_manifest(src)
    problems = check_files(src, manifest)
    expected = {entry["name"]: entry for entry in manifest["tables"]}
    store = BlobStore(blob_dir)
    with db.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            for t in archived_tables():
                entry = expected.pop(t.name, None)
                found = table_sum(conn, t)
                if entry is None:
                    problems.append(f"table {t.name}: in the database ({found.rows} rows) but not in the archive")
                    continue
                if found.rows != entry["rows"]:
                    problems.append(f"table {t.name}: {found.rows} rows in the database, "
                                    f"{entry['rows']} in the archive")
                elif found.sha256 != entry["sha256"]:
                    problems.append(f"table {t.name}: same row count ({found.rows}) but different content "
                                    f"(checksum {found.sha256}, archive {entry['sha256']})")
            missing = 0
            query = select(Blob.sha256).where(Blob.data.is_(None)).order_by(Blob.sha256)
            for digest in conn.execution_options(stream_results=True, yield_per=5000).scalars(query):
                if not store.verify(digest):
                    missing += 1
                    if missing <= 20:
                        problems.append(f"blob {digest}: missing from the blob store or its content changed")
            if missing > 20:
                problems.append(f"… {missing} blobs missing or changed in all")
    problems.extend(f"table {name}: in the archive but not in this Mailroom's database" for name in expected)
    return problems
