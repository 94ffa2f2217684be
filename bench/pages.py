"""Page benchmark: fill a database with N messages and time the inbox and the dashboard on the server.

    python bench/pages.py [--messages 200000] [--database-url URL] [--repeat 40]

Prints one JSON object and writes it to bench/results/pages-<backend>-<N>.json.
Times are server time: the full Flask request (routing, access check, queries, template) measured
in-process with the test client, so network and browser time are not included.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert, select  # noqa: E402

from config import Settings  # noqa: E402
from correspondence.db import Database  # noqa: E402
from correspondence.migrate import upgrade  # noqa: E402
from correspondence.models import (  # noqa: E402
    Channel,
    Constituent,
    Message,
    MessageStatus,
    Role,
    Staffer,
    Topic,
)
from correspondence.passwords import hash_password  # noqa: E402

PASSWORD = "benchmark password 123"


def fill(db: Database, n: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    with db.unit_of_work() as s:
        if s.scalar(select(func.count(Message.id))) >= n:
            return
        staff = []
        for i in range(8):
            st = Staffer(name=f"Staffer {i}", email=f"bench{i}@example.org",
                         role=Role.SUPERVISOR if i == 0 else Role.CORRESPONDENT,
                         password_hash=hash_password(PASSWORD), active=True)
            s.add(st)
            staff.append(st)
        s.flush()
        staff_ids = [st.id for st in staff]
        topic_ids = list(s.scalars(select(Topic.id)))
        s.execute(insert(Constituent), [{"first_name": f"First{i}", "last_name": f"Last{i}", "zip5": "43215",
                                         "city": "Columbus", "state": "OH", "district_status": "in_district",
                                         "created_at": now} for i in range(n // 4)])
        n_const = n // 4
    statuses = list(MessageStatus)
    weights = [30, 10, 8, 3, 20, 25, 1, 3]
    channels = list(Channel)
    batch = []
    with db.engine.begin() as conn:
        for i in range(n):
            status = rng.choices(statuses, weights)[0]
            received = now - timedelta(days=rng.random() * 365, seconds=rng.randint(0, 86400))
            batch.append({
                "idempotency_key": f"bench:{i}", "channel": rng.choice(channels).value, "direction": "inbound",
                "received_at": received, "from_name": f"Sender {i}", "from_address": f"sender{i}@example.net",
                "subject": f"Subject about issue {i % 500}",
                "body_text": ("I am writing about the issue in my neighbourhood. " * rng.randint(2, 12)).strip(),
                "constituent_id": rng.randint(1, n_const), "status": status.value,
                "assignee_id": rng.choice(staff_ids) if status not in (MessageStatus.NEW,) else None,
                "topic_id": rng.choice(topic_ids) if rng.random() < 0.6 else None,
                "due_at": received + timedelta(days=14), "processed_at": received, "created_at": received,
                "updated_at": received,
            })
            if len(batch) == 5000:
                conn.execute(insert(Message), batch)
                batch.clear()
        if batch:
            conn.execute(insert(Message), batch)
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    else:
        with db.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")


def timed(client, path: str, repeat: int) -> dict[str, float]:
    for _ in range(3):
        assert client.get(path).status_code == 200, path
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - t) * 1000)
        assert response.status_code == 200
    samples.sort()
    return {"p50_ms": round(statistics.median(samples), 1),
            "p95_ms": round(samples[int(0.95 * (len(samples) - 1))], 1), "n": repeat}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--repeat", type=int, default=40)
    args = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="mailroom-bench-"))
    url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    settings = Settings.from_env({}, instance_dir=workdir, database_url=url, secret_key="bench",
                                 redis_url="redis://unused", testing=False)
    url = settings.database_url
    t0 = time.perf_counter()
    upgrade(url)
    db = Database.from_settings(settings)
    fill(db, args.messages)
    fill_s = time.perf_counter() - t0

    from web import create_app

    app = create_app(settings)
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page).group(1)
    r = client.post("/login", data={"email": "bench0@example.org", "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 302, r.status_code
    with db.unit_of_work() as s:
        topic = s.scalar(select(Topic.id).where(Topic.name == "Health"))
        staffer = s.scalar(select(Staffer.id).where(Staffer.email == "bench3@example.org"))
    first = client.get("/inbox/").get_data(as_text=True)
    nxt = re.search(r'href="([^"]+)" id="next-page"', first).group(1).replace("&amp;", "&")
    pages = {
        "inbox_first_page": "/inbox/",
        "inbox_second_page": nxt,
        "inbox_filtered": f"/inbox/?status=assigned&topic={topic}&assignee={staffer}",
        "inbox_channel_filter": "/inbox/?channel=webform&sort=oldest",
        "dashboard": "/dashboard/",
    }
    results = {name: timed(client, path, args.repeat) for name, path in pages.items()}
    out = {"backend": db.engine.dialect.name, "messages": args.messages, "fill_seconds": round(fill_s, 1),
           "pages": results}
    print(json.dumps(out, indent=2))
    dest = Path(__file__).parent / "results" / f"pages-{db.engine.dialect.name}-{args.messages}.json"
    dest.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
