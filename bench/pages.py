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
    Case,
    CaseCategory,
    CaseStep,
    Channel,
    Constituent,
    ConstituentEmail,
    ConstituentTag,
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
        if s.execute(select(func.count(Message.id))).scalar_one() >= n:
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
        n_const = n // 4
        fill_constituents(s, n_const, rng, now)
    statuses = list(MessageStatus)
    weights = [30, 10, 8, 3, 2, 20, 25, 1, 3]  # in MessageStatus order (answer_queued: 2)
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
                "body_text": _body(rng, i),
                "constituent_id": rng.randint(1, n_const), "status": status.value,
                "assignee_id": rng.choice(staff_ids) if status not in (MessageStatus.NEW,) else None,
                "topic_id": rng.choice(topic_ids) if rng.random() < 0.6 else None,
                "stance": rng.choice(("support", "oppose", "neutral", None)),
                "due_at": received + timedelta(days=14), "processed_at": received, "created_at": received,
                "updated_at": received,
            })
            if len(batch) == 5000:
                conn.execute(insert(Message), batch)
                batch.clear()
        if batch:
            conn.execute(insert(Message), batch)
    with db.unit_of_work() as s:
        fill_cases(s, n // 50, n_const, staff_ids, rng, now)
    if db.engine.dialect.name == "postgresql":
        # Rows were inserted with their ids: move each table's sequence past them, so rows added after the
        # fill (bench/load.py's campaign, the run's letters) do not collide with them.
        with db.engine.begin() as conn:
            for table in ("constituents", "cases", "messages"):
                conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                                     f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)")
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    else:
        with db.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")


def _sentences() -> list[str]:
    from demo import texts as T

    pool = [s for sentences in T.ORGANIC.values() for s in sentences] + [s for c in T.CAMPAIGNS for s in c[5]]
    return [s.replace("{street}", "Main Street").replace("{num}", "9") for s in pool if "{" not in s.replace(
        "{street}", "").replace("{num}", "")]


SENTENCES = _sentences()


def _body(rng: random.Random, i: int) -> str:
    """A letter of 3-6 sentences from the demo office's pools; one in 2,000 mentions a rare word."""
    text = " ".join(rng.choice(SENTENCES) for _ in range(rng.randint(3, 6)))
    return text + (" The old quarry by the marsh floods every spring." if i % 2000 == 7 else "")


SURNAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
    "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker",
    "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson",
    "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts"
)
FIRST = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
    "William", "Barbara", "Ana", "Wei"
)
TAGS = ("veteran", "small business", "press", "donor", "teacher", "farmer")


def fill_constituents(s, n_const: int, rng: random.Random, now: datetime) -> None:
    """People as an office has them: about one in eight has one of the 50 commonest surnames (so a
    "Smith" has thousands of namesakes), 30 ZIP codes, most in the district, most with an email,
    one in ten tagged."""
    weights = [1 / (rank + 1) for rank in range(len(SURNAMES))]
    rows, emails, tags = [], [], []
    for i in range(n_const):
        zip_index = rng.randrange(30)
        last = rng.choices(SURNAMES, weights)[0] if rng.random() < 0.12 else f"{rng.choice(SURNAMES)}{i}"
        rows.append({"id": i + 1, "first_name": rng.choice(FIRST), "last_name": last, "zip5": f"{43001 + zip_index}",
                     "address1": f"{rng.randint(1, 9999)} {rng.choice(SURNAMES)} St", "city": f"Town {zip_index}",
                     "state": "OH", "district_status": "in_district" if zip_index < 25 else "out_of_district",
                     "created_at": now})
        if rng.random() < 0.8:
            emails.append({"constituent_id": i + 1, "address": f"person{i}@example.net"})
        if rng.random() < 0.1:
            tags.append({"constituent_id": i + 1, "tag": rng.choice(TAGS)})
        if len(rows) == 5000:
            s.execute(insert(Constituent), rows)
            rows.clear()
    if rows:
        s.execute(insert(Constituent), rows)
    for start in range(0, len(emails), 5000):
        s.execute(insert(ConstituentEmail), emails[start:start + 5000])
    for start in range(0, len(tags), 5000):
        s.execute(insert(ConstituentTag), tags[start:start + 5000])


def fill_cases(s, n_cases: int, n_const: int, staff_ids: list[int], rng: random.Random,
               now: datetime) -> None:
    categories = list(s.scalars(select(CaseCategory.id)))
    statuses = ["open", "waiting_on_constituent", "waiting_on_agency", "resolved", "closed"]
    cases, steps = [], []
    for i in range(n_cases):
        opened = now - timedelta(days=rng.random() * 365)
        status = rng.choices(statuses, [30, 10, 30, 10, 20])[0]
        worker = rng.choice(staff_ids)
        cases.append({"id": i + 1, "constituent_id": rng.randint(1, n_const), "category_id": rng.choice(categories),
                      "subject": f"Case {i}", "status": status, "priority": "normal", "caseworker_id": worker,
                      "opened_at": opened, "due_at": opened + timedelta(days=45)})
        for position, kind in enumerate(("release", "inquiry", "agency_response", "inform", "close"), start=1):
            steps.append({"case_id": i + 1, "position": position, "title": kind, "kind": kind, "assignee_id": worker,
                          "due_at": opened + timedelta(days=position * 9),
                          "done_at": opened if status in ("resolved", "closed") else None})
    for start in range(0, len(cases), 5000):
        s.execute(insert(Case), cases[start:start + 5000])
    for start in range(0, len(steps), 5000):
        s.execute(insert(CaseStep), steps[start:start + 5000])


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
        # A profile of a person with a common surname (the duplicate check has the most to compare).
        profile = s.scalar(select(Message.constituent_id).join(Constituent, Constituent.id == Message.constituent_id)
                           .where(Constituent.last_name == "Smith").limit(1))
    recent = (datetime.now(UTC) - timedelta(days=30)).date().isoformat()
    first = client.get("/inbox/").get_data(as_text=True)
    nxt = re.search(r'href="([^"]+)" id="next-page"', first).group(1).replace("&amp;", "&")
    pages = {
        "inbox_first_page": "/inbox/",
        "inbox_second_page": nxt,
        "inbox_filtered": f"/inbox/?status=assigned&topic={topic}&assignee={staffer}",
        "inbox_channel_filter": "/inbox/?channel=webform&sort=oldest",
        "dashboard": "/dashboard/",
        "dashboard_counted_fresh": "/dashboard/?fresh=1",
        # Issue 6: the constituent record at 250,000 people / 1,000,000 messages.
        "constituent_profile": f"/constituents/{profile}",
        "case_list_everyone": "/cases/?who=all",
        "segment_count_topic_stance": f"/constituents/count.json?topic_id={topic}&stance=oppose",
        "segment_count_zip_tag": "/constituents/count.json?zips=43001+43002&tags=veteran",
        "segment_count_recent_in_district": f"/constituents/count.json?district=in_district&active_from={recent}",
        "segment_page_topic_stance": f"/constituents/?topic_id={topic}&stance=oppose",
        # Issue 7: one search box, and the analytics dashboard (read from its snapshot).
        "search_phrase": '/search/?q="farm+bill"',
        "search_common_words": "/search/?q=support+families",
        "search_rare_word": "/search/?q=quarry",
        "search_words_and_filters": "/search/?q=bridge+status:open",
        "search_zip": "/search/?q=zip:43001",
        "dashboard_analytics": "/dashboard/analytics",
    }
    from insight.analytics import refresh

    with Database.from_settings(settings, immediate=True).unit_of_work() as s:
        analytics_seconds = refresh(s).seconds  # what the five-minute job costs
    results = {name: timed(client, path, args.repeat) for name, path in pages.items()}
    out = {"backend": db.engine.dialect.name, "messages": args.messages, "fill_seconds": round(fill_s, 1),
           "analytics_job_seconds": analytics_seconds, "pages": results}
    print(json.dumps(out, indent=2))
    dest = Path(__file__).parent / "results" / f"pages-{db.engine.dialect.name}-{args.messages}.json"
    dest.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
