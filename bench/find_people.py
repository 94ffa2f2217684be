"""Find-a-person benchmark: N constituents, then the Constituents page's one search box, timed.

    python bench/find_people.py [--people 250000] [--database-url URL] [--repeat 20]

Prints one JSON object and writes it to bench/results/find-people-<backend>-<N>.json. Times are the
service calls the page makes (one page of 50 members and the count), median and 95th percentile in ms.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, select  # noqa: E402

from constituents import segments  # noqa: E402
from correspondence.db import Database  # noqa: E402
from correspondence.migrate import upgrade  # noqa: E402
from correspondence.models import Constituent, ConstituentEmail, ConstituentPhone, DistrictStatus  # noqa: E402

FIRST = ["Ana", "Bea", "Cal", "Dee", "Eli", "Fay", "Gus", "Hal", "Ivy", "Jo", "Kai", "Lee", "Mo", "Ned", "Oz", "Pat"]
LAST = ["Lopez", "Smith", "Okafor", "Nguyen", "Brown", "Garcia", "Miller", "Davis", "Wilson", "Anderson", "Shah",
        "Novak", "Becker", "Carter", "Alvarez", "Kim", "Patel", "Johnson", "Lee", "Martin"]
STREETS = ["Maple Ave", "Oak St", "Elm St", "High St", "Main St", "Broad St", "Park Rd", "Lake Dr", "Hill Ln"]
QUERIES = ["lopez", "ana lopez", "okafor 43215", "482 maple", "43215", "43215-1234", "(614) 555-0142",
           "555-0142", "ana.lopez1234@example.org", "ana.lopez12", "nobody-like-this"]


def fill(db: Database, people: int) -> None:
    rng = random.Random(14)
    with db.unit_of_work() as session:
        if session.scalar(select(Constituent.id).limit(1)) is not None:
            return
    chunk = 10_000
    for start in range(0, people, chunk):
        with db.unit_of_work() as session:
            rows: list[dict[str, Any]] = []
            for n in range(start, min(start + chunk, people)):
                first, last = rng.choice(FIRST), rng.choice(LAST)
                rows.append({"id": n + 1, "first_name": first, "last_name": last,
                             "address1": f"{rng.randint(1, 9999)} {rng.choice(STREETS)}", "city": "Columbus",
                             "state": "OH", "zip5": f"43{rng.randint(0, 299):03d}",
                             "zip4": f"{rng.randint(1, 9999):04d}", "district_status": DistrictStatus.IN_DISTRICT})
            session.execute(insert(Constituent), rows)
            session.execute(insert(ConstituentEmail), [
                {"constituent_id": r["id"],
                 "address": f"{r['first_name']}.{r['last_name']}{r['id']}@example.org".lower()} for r in rows])
            session.execute(insert(ConstituentPhone), [
                {"constituent_id": r["id"], "number": f"+1614555{r['id'] % 10000:04d}"} for r in rows if r["id"] % 3])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=250_000)
    parser.add_argument("--database-url")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/find.db"
    upgrade(url)
    db = Database(url)
    started = time.perf_counter()
    fill(db, args.people)
    queries: dict[str, dict[str, object]] = {}
    figures: dict[str, object] = {"people": args.people, "backend": db.engine.dialect.name,
                                  "fill_seconds": round(time.perf_counter() - started, 1), "queries": queries}
    for text in QUERIES:
        flt = segments.parse_filter({"find": text})
        times, found = [], 0
        for _ in range(args.repeat):
            with db.unit_of_work() as session:
                t0 = time.perf_counter()
                page = segments.members(session, flt, limit=50)
                found = segments.count(session, flt)
                times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        queries[text] = {"found": found, "first_page": len(page),
                         "median_ms": round(statistics.median(times), 1),
                         "p95_ms": round(times[int(len(times) * 0.95) - 1], 1)}
    db.dispose()
    out = Path(__file__).parent / "results" / f"find-people-{figures['backend']}-{args.people}.json"
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
